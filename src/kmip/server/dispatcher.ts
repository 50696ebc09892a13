/**
 * The KMIP request dispatcher: decodes a Request Message, runs each Batch
 * Item's operation against the object store, and builds the Response
 * Message in the request's protocol version. Every failure becomes a KMIP
 * error response; nothing a client sends makes it throw. With an audit
 * log, each message is audited before its operations run and before its
 * response is returned (see audit.ts). With an identity resolver, each
 * message's client certificate must map to a Keyward identity, and each
 * Batch Item's operation must be allowed by that identity's policies
 * (see identity.ts).
 */

import { isKeywardError } from "../../errors.ts";
import type { HsmToken } from "../../hsm/token.ts";
import { isKmipDecodeError } from "../errors.ts";
import type { KmipItem, StructureItem } from "../item.ts";
import { decodeTtlv, encodeTtlv, type TtlvDecodeOptions } from "../ttlv.ts";
import { type KmipAuditLog, KmipAuditRecord } from "./audit.ts";
import {
  atLeast,
  type KmipClient,
  type OperationContext,
  type ProtocolVersion,
  SUPPORTED_VERSIONS,
} from "./context.ts";

export { SUPPORTED_VERSIONS };

import { isKmipOperationError, KmipOperationError } from "./errors.ts";
import {
  type KmipAuthentication,
  type KmipPeerCertificate,
  type KmipPrincipal,
  kmipPolicyPath,
  operationCapability,
  UNCHECKED_OPERATIONS,
} from "./identity.ts";
import {
  asStructure,
  child,
  children,
  dateTime,
  enumItem,
  enumName,
  integer,
  integerOf,
  optionalEnum,
  struct,
  tag,
  text,
} from "./items.ts";
import type { KmipObjectStore, KmipTransaction } from "./object-store.ts";
import { operationHandler, operationIntroducedIn } from "./operations/index.ts";
import { replacedObjectLinks } from "./replaced-links.ts";
import { resultReasonItem } from "./result-reason.ts";
import { streamObjectOf } from "./streams.ts";

/** The version of an error response to a message whose own version is unreadable. */
const FALLBACK_VERSION: ProtocolVersion = { major: 1, minor: 0 };

/** A logger with pino's call shape; the dispatcher logs internal failures only. */
export interface KmipLogger {
  error(details: object, message: string): void;
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

export interface KmipDispatcherOptions {
  store: KmipObjectStore;
  logger?: KmipLogger;
  /**
   * The audit log, such as Keyward's `AuditBroker`. Without it, requests
   * are not audited, which only tests and tools should do.
   */
  audit?: KmipAuditLog;
  /**
   * Maps client certificates to identities, such as `KmipIdentityResolver`.
   * Without it, every client may use every operation, which only tests,
   * tools and servers without roles should do.
   */
  identities?: KmipAuthenticator;
  /**
   * The token that keys created with Extractable false are generated in
   * (see hsm-objects.ts). Without it, Keyward keeps such keys itself.
   */
  hsm?: HsmToken;
  /** The clock; tests may fix it. */
  now?: () => Date;
}

/**
 * Batch Items one request may carry. Every item gets a response item and
 * runs inside one object-store work, so a message of tens of thousands of
 * small items would hold the store and build a response many times the
 * request's size.
 */
export const MAX_BATCH_ITEMS = 1000;

/** The part of `KmipIdentityResolver` that the dispatcher uses. */
export interface KmipAuthenticator {
  authenticate(certificate: KmipPeerCertificate | undefined): Promise<KmipAuthentication>;
}

export function isSupportedVersion(version: ProtocolVersion): boolean {
  return SUPPORTED_VERSIONS.some(
    (supported) => supported.major === version.major && supported.minor === version.minor,
  );
}

export class KmipDispatcher {
  readonly store: KmipObjectStore;
  readonly #logger: KmipLogger | undefined;
  readonly #audit: KmipAuditLog | undefined;
  readonly #identities: KmipAuthenticator | undefined;
  readonly #now: () => Date;
  readonly #hsm: HsmToken | undefined;

  constructor(options: KmipDispatcherOptions) {
    this.store = options.store;
    this.#logger = options.logger;
    this.#audit = options.audit;
    this.#identities = options.identities;
    this.#now = options.now ?? (() => new Date());
    this.#hsm = options.hsm;
  }

  /**
   * Handles one TTLV request message and returns the TTLV response. A
   * message that does not decode gets an Invalid Message error response.
   */
  async handleTtlv(
    message: Uint8Array,
    client: KmipClient = {},
    limits: TtlvDecodeOptions = {},
  ): Promise<Buffer> {
    let request: KmipItem;
    try {
      request = decodeTtlv(message, limits);
    } catch (error) {
      if (!isKmipDecodeError(error)) throw error;
      return encodeTtlv(await this.rejectMessage(client, error.resultReason, error.message));
    }
    return encodeTtlv(await this.handleMessage(request, client));
  }

  /**
   * Handles one decoded Request Message and returns the Response Message.
   * A client whose certificate maps to no identity gets an Authentication
   * Not Successful response, and no operation runs. When the audit log
   * cannot record the request, no operation runs and the response is a
   * General Failure. When it cannot record the response, the response is
   * replaced by that failure, although the operations have run.
   */
  async handleMessage(request: KmipItem, client: KmipClient = {}): Promise<KmipItem> {
    let authentication: KmipAuthentication | undefined;
    if (this.#identities !== undefined) {
      try {
        authentication = await this.#identities.authenticate(client.certificate);
      } catch (error) {
        return this.#authenticationFailure(requestVersion(request), client, error);
      }
    }
    const principal = authentication?.ok === true ? authentication.principal : undefined;
    const record = this.#audit && new KmipAuditRecord(this.#audit, client, request, principal);
    if (record !== undefined) {
      try {
        await record.logRequest();
      } catch (error) {
        return this.#auditFailure(requestVersion(request), client, error);
      }
    }
    let response: KmipItem;
    if (authentication?.ok === false) {
      this.#logger?.warn(
        {
          identity: client.identity,
          remoteAddress: client.remoteAddress,
          reason: authentication.message,
        },
        "KMIP request rejected: the client certificate maps to no identity",
      );
      response = this.errorMessage(
        requestVersion(request),
        "AuthenticationNotSuccessful",
        authentication.message,
      );
    } else {
      // Streams and per-client limits tell clients apart by certificate, since CNs repeat across roles.
      response = await this.#process(
        request,
        client.certificate?.fingerprint ?? client.identity,
        principal,
      );
    }
    if (record !== undefined) {
      try {
        await record.logResponse(response);
      } catch (error) {
        return this.#auditFailure(requestVersion(request), client, error);
      }
    }
    return response;
  }

  /** Logs a failure to read the client's identity and returns the General Failure response. */
  #authenticationFailure(version: ProtocolVersion, client: KmipClient, error: unknown): KmipItem {
    const ids = { identity: client.identity, remoteAddress: client.remoteAddress };
    if (isKeywardError(error) && error.code === "sealed") {
      this.#logger?.info(ids, "KMIP request rejected: Keyward is sealed");
      return this.errorMessage(version, "GeneralFailure", "Keyward is sealed");
    }
    this.#logger?.error({ ...ids, err: error }, "failed to read the KMIP client's identity");
    return this.errorMessage(version, "GeneralFailure", "internal error");
  }

  /**
   * Returns the error response to a message that could not be decoded or
   * framed, audited like any other message. The message's protocol version
   * is unknown, so the response uses 1.0.
   */
  async rejectMessage(client: KmipClient, reason: string, message: string): Promise<KmipItem> {
    const response = this.errorMessage(FALLBACK_VERSION, reason, message);
    if (this.#audit === undefined) return response;
    const record = new KmipAuditRecord(this.#audit, client, undefined);
    try {
      await record.logRequest();
      await record.logResponse(response);
    } catch (error) {
      return this.#auditFailure(FALLBACK_VERSION, client, error);
    }
    return response;
  }

  /** Logs an audit failure and returns the General Failure response that replaces the request's own. */
  #auditFailure(version: ProtocolVersion, client: KmipClient, error: unknown): KmipItem {
    const ids = { identity: client.identity, remoteAddress: client.remoteAddress };
    if (isKeywardError(error) && error.code === "audit_failure") {
      this.#logger?.warn({ ...ids, err: error.message }, "KMIP request rejected: audit failure");
      return this.errorMessage(version, "GeneralFailure", `audit failure: ${error.message}`);
    }
    this.#logger?.error({ ...ids, err: error }, "KMIP request failed in the audit log");
    return this.errorMessage(version, "GeneralFailure", "internal error");
  }

  async #process(
    request: KmipItem,
    identity: string | undefined,
    principal: KmipPrincipal | undefined,
  ): Promise<KmipItem> {
    let version = FALLBACK_VERSION;
    try {
      if (request.tag !== tag("RequestMessage")) {
        throw new KmipOperationError("InvalidMessage", "the message is not a Request Message");
      }
      const message = asStructure(request, "RequestMessage");
      const header = asStructure(child(message, "RequestHeader"), "RequestHeader");
      version = readVersion(header);
      if (!isSupportedVersion(version)) {
        const requested = version;
        version = SUPPORTED_VERSIONS[0]!;
        throw new KmipOperationError(
          "InvalidMessage",
          `protocol version ${requested.major}.${requested.minor} is not supported`,
        );
      }
      return await this.#handleBatch(message, header, version, identity, principal);
    } catch (error) {
      if (isKmipOperationError(error)) {
        return this.errorMessage(version, error.resultReason, error.message);
      }
      this.#logger?.error({ err: error }, "KMIP request failed");
      return this.errorMessage(version, "GeneralFailure", "internal error");
    }
  }

  async #handleBatch(
    message: StructureItem,
    header: StructureItem,
    version: ProtocolVersion,
    identity: string | undefined,
    principal: KmipPrincipal | undefined,
  ): Promise<KmipItem> {
    const batchItems = children(message, "BatchItem");
    const countItem = child(header, "BatchCount");
    if (countItem === undefined || integerOf(countItem) !== batchItems.length) {
      throw new KmipOperationError(
        "InvalidMessage",
        "Batch Count does not match the number of Batch Items",
      );
    }
    if (batchItems.length === 0) {
      throw new KmipOperationError("InvalidMessage", "the request has no Batch Item");
    }
    if (batchItems.length > MAX_BATCH_ITEMS) {
      throw new KmipOperationError(
        "InvalidMessage",
        `the request has ${batchItems.length} Batch Items; the server accepts at most ${MAX_BATCH_ITEMS}`,
      );
    }
    const continuation = optionalEnum(header, "BatchErrorContinuationOption") ?? "Stop";
    const now = BigInt(Math.floor(this.#now().getTime() / 1000));
    const responses = await this.store.exclusive((store) =>
      this.#runBatchItems(
        batchItems,
        {
          version,
          store,
          identity,
          now,
          idPlaceholder: undefined,
          hsm: this.#hsm,
          authorize:
            principal === undefined
              ? undefined
              : (operation, uid) => this.#check(principal, operation, uid),
          permits:
            principal === undefined
              ? undefined
              : (operation, uid) => this.#permits(principal, operation, uid),
        },
        continuation,
        principal,
      ),
    );
    const responseMessage = this.#responseMessage(version, now, responses);
    const maximum = child(header, "MaximumResponseSize");
    if (maximum === undefined || encodeTtlv(responseMessage).length <= integerOf(maximum)) {
      return responseMessage;
    }
    return this.#responseMessage(
      version,
      now,
      responses.map((item) => tooLarge(item as StructureItem, version)),
    );
  }

  /**
   * Runs the Batch Items in order. Continue runs every item, and Stop ends
   * at the first failure. Undo also ends there, writes back every object
   * the earlier items changed, and reports those items as Operation Undone.
   */
  async #runBatchItems(
    batchItems: readonly KmipItem[],
    context: OperationContext,
    continuation: string,
    principal: KmipPrincipal | undefined,
  ): Promise<KmipItem[]> {
    const store: KmipTransaction = context.store;
    const undo = continuation === "Undo";
    if (undo) store.startJournal();
    try {
      const responses: KmipItem[] = [];
      let failed = false;
      for (const item of batchItems) {
        const response = await this.#handleBatchItem(item, context, principal);
        responses.push(response.item);
        if (!response.ok) {
          failed = true;
          if (continuation !== "Continue") break;
        }
      }
      if (!undo || !failed) return responses;
      await store.rollBack();
      return responses.map((item) => markUndone(item as StructureItem));
    } finally {
      store.endJournal();
    }
  }

  async #handleBatchItem(
    item: KmipItem,
    context: OperationContext,
    principal: KmipPrincipal | undefined,
  ): Promise<{ item: KmipItem; ok: boolean }> {
    const batchItem = asStructure(item, "BatchItem");
    const operationItem = child(batchItem, "Operation");
    const idItem = child(batchItem, "UniqueBatchItemID");
    const echo: KmipItem[] = [];
    if (operationItem !== undefined) echo.push(operationItem);
    if (idItem !== undefined) echo.push(idItem);
    try {
      if (operationItem === undefined)
        throw new KmipOperationError("InvalidMessage", "Operation is missing");
      const operation = enumName(operationItem);
      const handler = operationHandler(operation);
      const introduced = operationIntroducedIn(operation);
      if (
        handler === undefined ||
        (introduced !== undefined && !atLeast(context.version, introduced.major, introduced.minor))
      ) {
        throw new KmipOperationError(
          "OperationNotSupported",
          `operation ${operation} is not supported in this protocol version`,
        );
      }
      const payload = asStructure(child(batchItem, "RequestPayload"), "RequestPayload");
      if (principal !== undefined) this.#authorize(principal, operation, payload, context);
      const result = await handler(payload, context);
      return {
        ok: true,
        item: struct("BatchItem", [
          ...echo,
          enumItem("ResultStatus", "Success"),
          struct("ResponsePayload", result),
        ]),
      };
    } catch (error) {
      let reason = "GeneralFailure";
      let message = "internal error";
      if (isKmipOperationError(error)) {
        reason = error.resultReason;
        message = error.message;
      } else if (isKmipDecodeError(error)) {
        reason = error.resultReason;
        message = error.message;
      } else {
        this.#logger?.error({ err: error }, "KMIP operation failed");
      }
      return {
        ok: false,
        item: struct("BatchItem", [
          ...echo,
          enumItem("ResultStatus", "OperationFailed"),
          resultReasonItem(reason, context.version),
          text("ResultMessage", message),
        ]),
      };
    }
  }

  /**
   * Throws Permission Denied unless the principal's policies grant the
   * operation's capability on its policy path (see identity.ts).
   */
  #authorize(
    principal: KmipPrincipal,
    operation: string,
    payload: StructureItem,
    context: OperationContext,
  ): void {
    if (UNCHECKED_OPERATIONS.has(operation)) return;
    // Re-key Key Pair names its object in its own field and ignores a Unique
    // Identifier, so the check must not read one that the handler never uses.
    const uidItem =
      operation === "ReKeyKeyPair"
        ? child(payload, "PrivateKeyUniqueIdentifier")
        : child(payload, "UniqueIdentifier");
    const uid =
      uidItem?.type === "TextString"
        ? uidItem.value
        : (streamObjectOf(operation, payload) ?? context.idPlaceholder);
    this.#check(principal, operation, uid);
    // A new key with a Replaced Object Link can become a new version of the
    // linked object's managed key, so the link needs a Re-key of that object.
    if (operationCapability(operation) !== "create") return;
    for (const replacedUid of replacedObjectLinks(payload)) {
      this.#check(principal, "ReKey", replacedUid);
    }
  }

  /** True when the principal's policies grant `operation` on the object `uid`. Logs no denial. */
  #permits(principal: KmipPrincipal, operation: string, uid: string | undefined): boolean {
    if (principal.acl === undefined) return true;
    const path = kmipPolicyPath(operation, uid);
    return principal.acl.check({ path, operation: operationCapability(operation) }).allowed;
  }

  /** Throws Permission Denied unless the principal's policies grant `operation` on the object `uid`. */
  #check(principal: KmipPrincipal, operation: string, uid: string | undefined): void {
    if (this.#permits(principal, operation, uid)) return;
    const path = kmipPolicyPath(operation, uid);
    const capability = operationCapability(operation);
    this.#logger?.warn(
      { identity: principal.displayName, role: principal.role, path, capability },
      "KMIP operation denied by policy",
    );
    throw new KmipOperationError(
      "PermissionDenied",
      `permission denied: the policies of role ${principal.role ?? "(none)"} do not grant ${capability} on ${path}`,
    );
  }

  #responseMessage(version: ProtocolVersion, now: bigint, batchItems: KmipItem[]): KmipItem {
    return struct("ResponseMessage", [
      struct("ResponseHeader", [
        versionItem(version),
        dateTime("TimeStamp", now),
        integer("BatchCount", batchItems.length),
      ]),
      ...batchItems,
    ]);
  }

  /** Builds a response with one failed Batch Item, for a message that could not be processed. */
  errorMessage(version: ProtocolVersion, reason: string, message: string): KmipItem {
    const now = BigInt(Math.floor(this.#now().getTime() / 1000));
    return this.#responseMessage(version, now, [
      struct("BatchItem", [
        enumItem("ResultStatus", "OperationFailed"),
        resultReasonItem(reason, version),
        text("ResultMessage", message),
      ]),
    ]);
  }
}

/** Changes a successful Batch Item's Result Status to Operation Undone. */
function markUndone(item: StructureItem): KmipItem {
  const statusTag = tag("ResultStatus");
  return struct(
    "BatchItem",
    item.value.map((child) =>
      child.tag === statusTag && enumName(child) === "Success"
        ? enumItem("ResultStatus", "OperationUndone")
        : child,
    ),
  );
}

/** Replaces a successful Batch Item with a Response Too Large failure. */
function tooLarge(item: StructureItem, version: ProtocolVersion): KmipItem {
  const status = child(item, "ResultStatus");
  if (status === undefined || enumName(status) !== "Success") return item;
  const echo = item.value.filter(
    (child) => child.tag === tag("Operation") || child.tag === tag("UniqueBatchItemID"),
  );
  return struct("BatchItem", [
    ...echo,
    enumItem("ResultStatus", "OperationFailed"),
    resultReasonItem("ResponseTooLarge", version),
    text("ResultMessage", "the response exceeds the request's Maximum Response Size"),
  ]);
}

/** Returns the protocol version of a request when it is readable and supported, else 1.0. */
function requestVersion(request: KmipItem): ProtocolVersion {
  try {
    const message = asStructure(request, "RequestMessage");
    const version = readVersion(asStructure(child(message, "RequestHeader"), "RequestHeader"));
    return isSupportedVersion(version) ? version : FALLBACK_VERSION;
  } catch {
    return FALLBACK_VERSION;
  }
}

function readVersion(header: StructureItem): ProtocolVersion {
  const versionStructure = asStructure(child(header, "ProtocolVersion"), "ProtocolVersion");
  const major = child(versionStructure, "ProtocolVersionMajor");
  const minor = child(versionStructure, "ProtocolVersionMinor");
  if (major === undefined || minor === undefined) {
    throw new KmipOperationError("InvalidMessage", "Protocol Version is incomplete");
  }
  return { major: integerOf(major), minor: integerOf(minor) };
}

export function versionItem(version: ProtocolVersion): KmipItem {
  return struct("ProtocolVersion", [
    integer("ProtocolVersionMajor", version.major),
    integer("ProtocolVersionMinor", version.minor),
  ]);
}
