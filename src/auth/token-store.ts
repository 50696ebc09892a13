import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";

/** Storage key of the root token's record. Only its SHA-256 hash is stored. */
const ROOT_TOKEN_KEY = "auth/token/root";

/** Prefix of tokens Keyward generates, so a leaked one is easy to spot in a scan. */
export const TOKEN_PREFIX = "kw.";

/** The identity a request acts as once its token is checked. */
export interface Identity {
  /** A stable, non-secret identifier of the token (never the token itself). */
  accessor: string;
  displayName: string;
  policies: string[];
}

interface RootTokenRecord {
  hash: string;
  accessor: string;
  createdAt: string;
}

function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** Generates a token: the prefix and 256 random bits, base64url-encoded. */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/**
 * Checks tokens against the stored hashes.
 *
 * NOTE: only the root token exists so far. Ordinary tokens, policies and
 * machine logins are not implemented yet, so every authenticated request
 * acts with the root policy.
 */
export class TokenStore {
  readonly #barrier: Barrier;
  /** The root token's record as last read or written; dropped at seal. */
  #rootRecord: RootTokenRecord | undefined;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  /** Stores a new root token (generated unless given) and returns it. Replaces any earlier one. */
  async createRootToken(token: string = generateToken()): Promise<string> {
    if (token.length === 0 || token.length > 512) {
      throw new KeywardError("invalid_field", "the root token must be 1 to 512 characters", {
        field: "root_token",
      });
    }
    const record: RootTokenRecord = {
      hash: hashToken(token).toString("hex"),
      accessor: randomBytes(12).toString("base64url"),
      createdAt: new Date().toISOString(),
    };
    await this.#barrier.put(ROOT_TOKEN_KEY, Buffer.from(JSON.stringify(record)));
    this.#rootRecord = record;
    return token;
  }

  async hasRootToken(): Promise<boolean> {
    return (await this.#barrier.get(ROOT_TOKEN_KEY)) !== undefined;
  }

  /** Forgets cached records, so the next lookup reads the barrier (and fails while sealed). */
  clearCache(): void {
    this.#rootRecord = undefined;
  }

  /** Returns the identity of a valid token, or undefined. The hash comparison is constant-time. */
  async lookup(token: string): Promise<Identity | undefined> {
    let record = this.#rootRecord;
    if (record === undefined) {
      const stored = await this.#barrier.get(ROOT_TOKEN_KEY);
      if (stored === undefined) return undefined;
      record = JSON.parse(Buffer.from(stored).toString("utf8")) as RootTokenRecord;
      this.#rootRecord = record;
    }
    const expected = Buffer.from(record.hash, "hex");
    if (!timingSafeEqual(hashToken(token), expected)) return undefined;
    return { accessor: record.accessor, displayName: "root", policies: ["root"] };
  }
}
