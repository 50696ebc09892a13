import { hmacValue, redact } from "./redact.ts";
import type { AuditPayload, AuditRequestEntry, AuditResponseEntry } from "./types.ts";

/** The HMAC key and field list that `buildPayload` redacts with. */
export interface RedactionSettings {
  hmacKey: Uint8Array;
  sensitiveFields: ReadonlySet<string>;
}

/**
 * Returns `data` as plain JSON values with sensitive fields HMAC'd. The
 * JSON round trip applies `toJSON` and drops undefined and functions, so
 * the record hashes the same as the line a device writes.
 */
function redactData(data: unknown, settings: RedactionSettings): unknown {
  if (data === undefined) return undefined;
  const plain: unknown = JSON.parse(JSON.stringify(data) ?? "null");
  return redact(plain, settings.sensitiveFields, settings.hmacKey);
}

/**
 * Paths whose `id` field, in the request body and in the response data,
 * is a token: the ID a root caller chooses in `auth/token/create`, and the
 * looked-up token that `auth/token/lookup` and `lookup-self` return.
 */
const TOKEN_ID_PATH = /^auth\/token\//;

/** Field lists with `id` added, one per configured list, built once. */
const withTokenId = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

/** Returns the redaction settings for a request path: the configured ones, plus `id` on token paths. */
function settingsForPath(path: string, settings: RedactionSettings): RedactionSettings {
  if (!TOKEN_ID_PATH.test(path)) return settings;
  let fields = withTokenId.get(settings.sensitiveFields);
  if (fields === undefined) {
    fields = new Set([...settings.sensitiveFields, "id"]);
    withTokenId.set(settings.sensitiveFields, fields);
  }
  return { hmacKey: settings.hmacKey, sensitiveFields: fields };
}

type PayloadParts = Pick<AuditPayload, "request" | "auth">;

/**
 * The redacted request and auth parts already built for a request, so that
 * its response record reuses them instead of computing the HMACs again.
 * Keyed by the entry's `request` object, which the request and response
 * entries of one request share.
 */
const builtParts = new WeakMap<
  object,
  { source: AuditRequestEntry["auth"]; parts: PayloadParts }
>();

function partsOf(entry: AuditRequestEntry, settings: RedactionSettings): PayloadParts {
  const { request, auth } = entry;
  const built = builtParts.get(request);
  if (built !== undefined && built.source === auth) return built.parts;
  const parts: PayloadParts = {
    request: {
      id: request.id,
      operation: request.operation,
      path: request.path,
      remote_address: request.remoteAddress,
      key_name: request.keyName,
      data: redactData(request.data, settingsForPath(request.path, settings)),
      protocol: request.protocol,
    },
    auth: {
      client_token:
        request.clientToken === undefined
          ? undefined
          : hmacValue(settings.hmacKey, request.clientToken),
      accessor: auth?.accessor ?? "",
      display_name: auth?.displayName ?? "",
      policies: auth?.policies ?? [],
      token_type: auth?.tokenType,
    },
  };
  builtParts.set(request, { source: auth, parts });
  return parts;
}

/**
 * Builds the record every device writes for a request or a response,
 * before chaining. `node` is the id of the node that writes it.
 */
export function buildPayload(
  type: "request" | "response",
  entry: AuditRequestEntry | AuditResponseEntry,
  time: Date,
  settings: RedactionSettings,
  node?: string,
): AuditPayload {
  const payload: AuditPayload = {
    type,
    time: time.toISOString(),
    node,
    ...partsOf(entry, settings),
    error: entry.error,
  };
  if (type === "response" && "response" in entry) {
    payload.response = {
      status: entry.response.status,
      data: redactData(entry.response.data, settingsForPath(entry.request.path, settings)),
    };
  }
  return payload;
}
