import { createHash, randomBytes } from "node:crypto";
import { constantTimeEqual } from "../crypto/compare.ts";
import { invalidField, KeywardError } from "../errors.ts";
import type { DeviceStore, RecordWriter } from "./store.ts";
import type { BootstrapTokenRecord, DeviceRecord } from "./types.ts";

/** Random bytes in a token: 256 bits, so a fast hash suffices to store it. */
const TOKEN_BYTES = 32;

const TOKEN_PREFIX = "kwb.";

/** `kwb.` and 32 bytes in unpadded base64url. */
const TOKEN_FORMAT = /^kwb\.[A-Za-z0-9_-]{43}$/;

/** Lifetime of a token when the request gives none, in seconds (24 hours). */
export const DEFAULT_BOOTSTRAP_TTL_SECONDS = 24 * 3600;

/** Maximum lifetime of a token, in seconds (365 days). */
export const MAX_BOOTSTRAP_TTL_SECONDS = 365 * 86_400;

/** Most enrolments one token may allow. */
export const MAX_BOOTSTRAP_USES = 1000;

const FOLDER = "bootstrap-tokens";

/** Returns the storage path of the token whose SHA-256 is `tokenSha256` (hex). */
export function tokenPath(tokenSha256: string): string {
  return `${FOLDER}/${tokenSha256}`;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Returns a new token and the record that stores its hash. */
export function newBootstrapToken(
  device: DeviceRecord,
  now: Date,
  ttlSeconds: number,
  numUses: number,
): { token: string; record: BootstrapTokenRecord } {
  if (
    !Number.isSafeInteger(ttlSeconds) ||
    ttlSeconds <= 0 ||
    ttlSeconds > MAX_BOOTSTRAP_TTL_SECONDS
  ) {
    throw invalidField("ttl", `"ttl" must be a positive duration of at most 365 days`);
  }
  if (!Number.isSafeInteger(numUses) || numUses < 1 || numUses > MAX_BOOTSTRAP_USES) {
    throw invalidField("num_uses", `"num_uses" must be an integer from 1 to ${MAX_BOOTSTRAP_USES}`);
  }
  const token = TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString("base64url");
  const record: BootstrapTokenRecord = {
    tokenSha256: sha256(token).toString("hex"),
    device: device.name,
    deviceId: device.id,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    numUses,
    remainingUses: numUses,
  };
  return { token, record };
}

/** The reason a presented token was rejected, which is logged and never sent to the client. */
export type TokenRejection = "malformed" | "unknown" | "expired" | "used" | "device_gone";

function rejection(reason: TokenRejection, device?: string): KeywardError {
  const details = { reason, ...(device === undefined ? {} : { device }) };
  switch (reason) {
    case "expired":
      return new KeywardError(
        "bootstrap_token_expired",
        "the bootstrap token has expired; create a new one for this device",
        { field: "bootstrap_token", details },
      );
    case "used":
      return new KeywardError(
        "bootstrap_token_used",
        "the bootstrap token has no uses left; create a new one for this device",
        { field: "bootstrap_token", details },
      );
    default:
      return new KeywardError("bootstrap_token_invalid", "the bootstrap token is not valid", {
        field: "bootstrap_token",
        details,
      });
  }
}

/** True for every error `BootstrapTokens` raises for a rejected token. */
export function isTokenRejection(error: unknown): boolean {
  return (
    error instanceof KeywardError &&
    (error.code === "bootstrap_token_invalid" ||
      error.code === "bootstrap_token_expired" ||
      error.code === "bootstrap_token_used")
  );
}

/**
 * Looks up bootstrap tokens by the SHA-256 of the presented text. The
 * storage key is the hash, which reveals nothing about a token, and the
 * stored hash is compared once more in constant time.
 */
export class BootstrapTokens {
  readonly #store: DeviceStore;

  constructor(store: DeviceStore) {
    this.#store = store;
  }

  /** Returns the record of `token`. Throws `bootstrap_token_invalid` when it is malformed or unknown. */
  async find(token: string): Promise<BootstrapTokenRecord> {
    // Hash even a malformed token, so that case costs the same work.
    const hash = sha256(token);
    if (!TOKEN_FORMAT.test(token)) throw rejection("malformed");
    const record = await this.#store.get<BootstrapTokenRecord>(tokenPath(hash.toString("hex")));
    if (!record || !constantTimeEqual(Buffer.from(record.tokenSha256, "hex"), hash)) {
      throw rejection("unknown");
    }
    return record;
  }

  /**
   * Checks that `record` still allows an enrolment of `device` at `now`.
   * Throws `bootstrap_token_invalid` when the device was deleted since,
   * `bootstrap_token_expired` or `bootstrap_token_used`.
   */
  check(
    record: BootstrapTokenRecord,
    device: DeviceRecord | undefined,
    now: Date,
  ): asserts device is DeviceRecord {
    if (!device || device.id !== record.deviceId) throw rejection("device_gone", record.device);
    if (Date.parse(record.expiresAt) <= now.getTime()) throw rejection("expired", record.device);
    if (record.remainingUses < 1) throw rejection("used", record.device);
  }

  /**
   * Reads `record` again inside `writer`, so that a use counted meanwhile on
   * another node is seen. Throws `bootstrap_token_invalid` when the token
   * was deleted since.
   */
  async readAgain(
    writer: RecordWriter,
    record: BootstrapTokenRecord,
  ): Promise<BootstrapTokenRecord> {
    const current = await writer.get<BootstrapTokenRecord>(tokenPath(record.tokenSha256));
    if (current === undefined) throw rejection("unknown", record.device);
    return current;
  }

  /**
   * Counts one use of `record` in `writer`. A used-up token stays stored
   * until it expires, so presenting it again gets `bootstrap_token_used`.
   */
  async consume(writer: RecordWriter, record: BootstrapTokenRecord): Promise<void> {
    await writer.put(tokenPath(record.tokenSha256), {
      ...record,
      remainingUses: record.remainingUses - 1,
    });
  }

  /**
   * Deletes in `writer` the tokens of `device` that expired before `now`,
   * and every one of them when `now` is undefined. Returns the hashes kept.
   */
  async prune(writer: RecordWriter, device: DeviceRecord, now?: Date): Promise<string[]> {
    const kept: string[] = [];
    for (const hash of device.bootstrapTokens) {
      const record = await writer.get<BootstrapTokenRecord>(tokenPath(hash));
      const drop =
        record === undefined || now === undefined || Date.parse(record.expiresAt) <= now.getTime();
      if (drop) await writer.delete(tokenPath(hash));
      else kept.push(hash);
    }
    return kept;
  }
}
