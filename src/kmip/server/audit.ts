/**
 * Audit records of KMIP request messages, written through Keyward's audit
 * broker like those of HTTP requests.
 *
 * Each request message gets one request record before its operations run
 * and one response record before its response is sent. The record's path
 * is `kmip/` followed by the message's distinct operations, joined by
 * commas (`kmip/Create`, `kmip/Create,Get`), or `kmip` alone for a message
 * whose operations cannot be read. Its operation is `update` and its
 * protocol `kmip`. `auth.display_name` is `<role>/<CN>` for a client
 * certificate that maps to a KMIP role, else the certificate's subject CN.
 * `auth.policies` are the role's policies, and `auth.accessor` is the
 * serial number of a credential that Keyward issued (`kmip-credential:`
 * and the hex serial), else empty. The request and response messages are
 * the records' data, as JSON in
 * which the value of every sensitive tag, and of every tag outside the
 * KMIP registry, is replaced by its HMAC.
 */
import { randomUUID } from "node:crypto";
import type { AuditBroker } from "../../audit/broker.ts";
import type { AuditRequestEntry } from "../../audit/types.ts";
import type { KmipItem } from "../item.ts";
import { tagDisplayName, tagInfo, tagNumber } from "../tags.ts";
import {
  contextForAttributeName,
  contextForTag,
  formatScalarText,
  type ValueContext,
} from "../text-values.ts";
import type { KmipClient } from "./context.ts";
import type { KmipPrincipal } from "./identity.ts";

/** The part of the audit broker that KMIP uses. */
export type KmipAuditLog = Pick<AuditBroker, "isOpen" | "hmac" | "logRequest" | "logResponse">;

/** The record path of a message whose operations cannot be read. */
export const UNREAD_MESSAGE_PATH = "kmip";

/**
 * Tags whose values are secret or reveal secrets. They cover key material
 * (also inside a Key Value), plaintext, ciphertext and RNG output (Data),
 * IVs, additional authenticated data and tags, signatures and MACs. They
 * also cover opaque objects, credentials, derivation inputs, PKCS#11
 * parameters and the state of streamed operations (Correlation Value).
 * Every value inside a structure with one of these tags is replaced too.
 */
export const SENSITIVE_TAGS: ReadonlySet<number> = new Set(
  [
    "KeyMaterial",
    "KeyValue",
    "Data",
    "IVCounterNonce",
    "AuthenticatedEncryptionAdditionalData",
    "AuthenticatedEncryptionTag",
    "SignatureData",
    "MACData",
    "DigestedData",
    "OpaqueDataValue",
    "CredentialValue",
    "Password",
    "HashedPassword",
    "OneTimePassword",
    "NonceValue",
    "TicketValue",
    "DerivationData",
    "Salt",
    "PKCS_11InputParameters",
    "PKCS_11OutputParameters",
    "CorrelationValue",
  ].map(tagNumber),
);

const ATTRIBUTE_NAME = tagNumber("AttributeName");
const ATTRIBUTE_VALUE = tagNumber("AttributeValue");
const BATCH_ITEM = tagNumber("BatchItem");
const OPERATION = tagNumber("Operation");
const RESULT_STATUS = tagNumber("ResultStatus");
const RESULT_REASON = tagNumber("ResultReason");
const RESULT_MESSAGE = tagNumber("ResultMessage");

/**
 * Converts a message to the JSON of an audit record. A structure becomes an
 * object keyed by tag name, and a tag that occurs more than once in it
 * becomes an array in message order. Scalars take the text forms of the
 * KMIP JSON encoding: enumerations and masks by name, byte strings and big
 * integers in hex, date-times in ISO 8601. Integers, intervals, booleans
 * and long integers that fit a double stay JSON numbers and booleans.
 * Every value under a sensitive tag or a tag outside the registry becomes
 * `hmac(text)` of its text form.
 */
export function auditMessageData(item: KmipItem, hmac: (text: string) => string): unknown {
  return itemData(item, contextForTag(item.tag), hmac, false);
}

function itemData(
  item: KmipItem,
  context: ValueContext,
  hmac: (text: string) => string,
  insideSecret: boolean,
): unknown {
  const secret = insideSecret || SENSITIVE_TAGS.has(item.tag) || tagInfo(item.tag) === undefined;
  if (item.type === "Structure") {
    const fields: Record<string, unknown> = {};
    let attributeName: string | undefined;
    for (const child of item.value) {
      const childContext =
        child.tag === ATTRIBUTE_VALUE
          ? contextForAttributeName(attributeName)
          : contextForTag(child.tag);
      const value = itemData(child, childContext, hmac, secret);
      if (child.tag === ATTRIBUTE_NAME && child.type === "TextString") attributeName = child.value;
      const name = tagDisplayName(child.tag);
      // No item converts to an array, so an array here contains a repeated tag.
      const existing = fields[name];
      if (existing === undefined) fields[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else fields[name] = [existing, value];
    }
    return fields;
  }
  if (secret) return hmac(formatScalarText(item, context, "|"));
  // Each case returns the same value as the text form would give, but builds text only where it returns it.
  switch (item.type) {
    case "Boolean":
    case "Interval":
      return item.value;
    case "Integer": {
      if (context.mask === undefined) return item.value;
      const text = formatScalarText(item, context, "|");
      return /^-?\d+$/.test(text) ? item.value : text;
    }
    case "LongInteger":
      return Number.isSafeInteger(Number(item.value)) ? Number(item.value) : String(item.value);
    default:
      return formatScalarText(item, context, "|");
  }
}

/** Returns the record path of a request message (see the file comment). */
export function auditPath(request: KmipItem | undefined): string {
  if (request?.type !== "Structure") return UNREAD_MESSAGE_PATH;
  const operations = new Set<string>();
  for (const batchItem of request.value) {
    if (batchItem.tag !== BATCH_ITEM || batchItem.type !== "Structure") continue;
    const operation = batchItem.value.find((child) => child.tag === OPERATION);
    if (operation?.type === "Enumeration") {
      operations.add(formatScalarText(operation, contextForTag(OPERATION)));
    }
  }
  return operations.size === 0 ? UNREAD_MESSAGE_PATH : `kmip/${[...operations].join(",")}`;
}

/** Returns "Reason: message" of the first failed Batch Item of a response, or undefined. */
function firstFailure(response: KmipItem): string | undefined {
  if (response.type !== "Structure") return undefined;
  for (const batchItem of response.value) {
    if (batchItem.tag !== BATCH_ITEM || batchItem.type !== "Structure") continue;
    const status = batchItem.value.find((child) => child.tag === RESULT_STATUS);
    if (status === undefined || status.type !== "Enumeration") continue;
    const statusName = formatScalarText(status, contextForTag(RESULT_STATUS));
    if (statusName === "Success") continue;
    const reason = batchItem.value.find((child) => child.tag === RESULT_REASON);
    const message = batchItem.value.find((child) => child.tag === RESULT_MESSAGE);
    const reasonName =
      reason?.type === "Enumeration"
        ? formatScalarText(reason, contextForTag(RESULT_REASON))
        : statusName;
    return message?.type === "TextString" ? `${reasonName}: ${message.value}` : reasonName;
  }
  return undefined;
}

/** Returns the `auth` part of a record (see the file comment); none without a certificate. */
function auditAuth(client: KmipClient, principal: KmipPrincipal | undefined) {
  if (principal !== undefined) {
    return {
      auth: {
        accessor:
          principal.credential === undefined ? "" : `kmip-credential:${principal.credential}`,
        displayName: principal.displayName,
        policies: [...principal.policies],
      },
    };
  }
  if (client.identity === undefined) return {};
  return { auth: { accessor: "", displayName: client.identity, policies: [] } };
}

/**
 * The audit records of one request message. `logRequest` writes the
 * request record and `logResponse` the response record. Both throw
 * `audit_failure` when no device could write, as the broker does.
 */
export class KmipAuditRecord {
  readonly #log: KmipAuditLog;
  readonly #entry: AuditRequestEntry;
  readonly #request: KmipItem | undefined;

  /**
   * `request` is undefined for a message that could not be decoded.
   * `principal` is the identity the client certificate maps to, when known.
   */
  constructor(
    log: KmipAuditLog,
    client: KmipClient,
    request: KmipItem | undefined,
    principal?: KmipPrincipal,
  ) {
    this.#log = log;
    this.#request = request;
    this.#entry = {
      request: {
        id: randomUUID(),
        operation: "update",
        path: auditPath(request),
        remoteAddress: client.remoteAddress ?? "",
        protocol: "kmip",
      },
      ...auditAuth(client, principal),
    };
  }

  async logRequest(): Promise<void> {
    // The HMAC key exists only while the broker is open; a closed broker
    // writes nothing, and a closing one rejects the entry.
    if (this.#request !== undefined && this.#log.isOpen) {
      this.#entry.request.data = auditMessageData(this.#request, (text) => this.#log.hmac(text));
    }
    await this.#log.logRequest(this.#entry);
  }

  async logResponse(response: KmipItem): Promise<void> {
    const data = this.#log.isOpen
      ? auditMessageData(response, (text) => this.#log.hmac(text))
      : undefined;
    await this.#log.logResponse({
      ...this.#entry,
      response: { status: 200, ...(data === undefined ? {} : { data }) },
      error: firstFailure(response),
    });
  }
}
