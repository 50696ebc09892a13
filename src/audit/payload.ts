import { canonicalJson, type FieldTexts, payloadFieldTexts } from "./chain.ts";
import { hmacValue, pathSensitiveFields, redactInOrder } from "./redact.ts";
import type { AuditPayload, AuditRequestEntry, AuditResponseEntry } from "./types.ts";

/** The HMAC key and field list that `buildPayload` redacts with. */
export interface RedactionSettings {
  hmacKey: Uint8Array;
  sensitiveFields: ReadonlySet<string>;
}

/** Returns `data` as plain JSON values with sensitive fields HMAC'd (see `redactInOrder`). */
function redactData(
  data: unknown,
  settings: RedactionSettings,
): { value: unknown; keysInOrder: boolean } {
  if (data === undefined) return { value: undefined, keysInOrder: true };
  const redacted = redactInOrder(data, settings.sensitiveFields, settings.hmacKey);
  return redacted.value === undefined ? { value: null, keysInOrder: true } : redacted;
}

/**
 * Paths whose `id` field, in the request body and in the response data,
 * is a token: the ID a root caller chooses in `auth/token/create`, and the
 * looked-up token that `auth/token/lookup` and `lookup-self` return.
 */
const TOKEN_ID_PATH = /^auth\/token\//;

/** Extended field lists per configured list, by the added fields joined with commas, built once. */
const extendedFields = new WeakMap<ReadonlySet<string>, Map<string, ReadonlySet<string>>>();

/**
 * Returns the redaction settings for a request path: the configured ones,
 * plus `id` on token paths and the fields of `pathSensitiveFields`.
 */
function settingsForPath(path: string, settings: RedactionSettings): RedactionSettings {
  const added = [...(TOKEN_ID_PATH.test(path) ? ["id"] : []), ...pathSensitiveFields(path)];
  if (added.length === 0) return settings;
  let lists = extendedFields.get(settings.sensitiveFields);
  if (lists === undefined) {
    lists = new Map();
    extendedFields.set(settings.sensitiveFields, lists);
  }
  const name = added.join(",");
  let fields = lists.get(name);
  if (fields === undefined) {
    fields = new Set([...settings.sensitiveFields, ...added]);
    lists.set(name, fields);
  }
  return { hmacKey: settings.hmacKey, sensitiveFields: fields };
}

type PayloadParts = Pick<AuditPayload, "request" | "auth">;

/** The request and auth parts of a request's records, with their canonical JSON. */
interface BuiltParts {
  /** The entry's `auth` the parts were built from. */
  source: AuditRequestEntry["auth"];
  parts: PayloadParts;
  texts: { request: string; auth: string };
}

/**
 * The redacted request and auth parts already built for a request, so that
 * its response record reuses them instead of computing the HMACs and the
 * JSON again. Keyed by the entry's `request` object, which the request and
 * response entries of one request share.
 */
const builtParts = new WeakMap<object, BuiltParts>();

/**
 * Returns the canonical JSON of a part whose fields were added in
 * code-unit order of their names. When `keysInOrder` is true (no
 * array-index key at any depth, see `redactInOrder`), `JSON.stringify`
 * writes that order, and it is faster than the generic canonical form.
 */
function partText(part: object, keysInOrder: boolean): string {
  return keysInOrder ? JSON.stringify(part) : canonicalJson(part);
}

function partsOf(entry: AuditRequestEntry, settings: RedactionSettings): BuiltParts {
  const { request, auth } = entry;
  const built = builtParts.get(request);
  if (built !== undefined && built.source === auth) return built;
  const data = redactData(request.data, settingsForPath(request.path, settings));
  // Fields in code-unit order of their names, for partText.
  const requestPart: AuditPayload["request"] = {
    data: data.value,
    id: request.id,
    key_name: request.keyName,
    operation: request.operation,
    path: request.path,
    protocol: request.protocol,
    remote_address: request.remoteAddress,
  };
  const authPart: AuditPayload["auth"] = {
    accessor: auth?.accessor ?? "",
    client_token:
      request.clientToken === undefined
        ? undefined
        : hmacValue(settings.hmacKey, request.clientToken),
    display_name: auth?.displayName ?? "",
    policies: auth?.policies ?? [],
    token_type: auth?.tokenType,
  };
  const result: BuiltParts = {
    source: auth,
    parts: { request: requestPart, auth: authPart },
    texts: {
      request: partText(requestPart, data.keysInOrder),
      auth: partText(
        authPart,
        authPart.policies.every((policy) => typeof policy === "string"),
      ),
    },
  };
  builtParts.set(request, result);
  return result;
}

/** A payload with its fields serialised, which every device chains without serialising again. */
export interface PreparedPayload {
  payload: AuditPayload;
  fields: FieldTexts;
}

/**
 * Builds the record every device writes for a request or a response,
 * before chaining, and serialises its fields. `node` is the id of the node
 * that writes it.
 */
export function preparePayload(
  type: "request" | "response",
  entry: AuditRequestEntry | AuditResponseEntry,
  time: Date,
  settings: RedactionSettings,
  node?: string,
): PreparedPayload {
  const { parts, texts } = partsOf(entry, settings);
  let response: AuditPayload["response"];
  let responseText: string | undefined;
  if (type === "response" && "response" in entry) {
    const data = redactData(entry.response.data, settingsForPath(entry.request.path, settings));
    response = { data: data.value, status: entry.response.status };
    responseText = partText(response, data.keysInOrder && Number.isFinite(response.status));
  }
  // Fields in code-unit order of their names, which payloadFieldTexts then need not sort.
  const payload: AuditPayload = {
    auth: parts.auth,
    error: entry.error,
    node,
    request: parts.request,
    response,
    time: time.toISOString(),
    type,
  };
  const fields = payloadFieldTexts(payload, {
    auth: texts.auth,
    request: texts.request,
    response: responseText,
  });
  return { payload, fields };
}

/** Builds the record every device writes for a request or a response (see `preparePayload`). */
export function buildPayload(
  type: "request" | "response",
  entry: AuditRequestEntry | AuditResponseEntry,
  time: Date,
  settings: RedactionSettings,
  node?: string,
): AuditPayload {
  return preparePayload(type, entry, time, settings, node).payload;
}
