import { createHash } from "node:crypto";
import { constantTimeEqual } from "../crypto/compare.ts";
import { invalidField, KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { Mutex } from "../util/mutex.ts";
import { addressInCidrs } from "./cidr.ts";
import { BarrierHmacKey } from "./hmac-key.ts";
import {
  type CreateTokenRequest,
  checkCreateOptions,
  checkTokenLength,
  createdTokenRecord,
  generateToken,
  type IssuedToken,
  type LoginTokenRequest,
  loginTokenRecord,
  MAX_TOKEN_LENGTH,
  rootTokenRecord,
} from "./token-issue.ts";
import { isRootPolicySet } from "./token-policies.ts";
import { freezeRecord, isExpired, renewedExpiry, type TokenRecord } from "./token-record.ts";
import { TokenRepository } from "./token-repository.ts";
import { TokenRoleStore } from "./token-roles.ts";

export {
  type CreateTokenRequest,
  generateToken,
  type IssuedToken,
  type LoginTokenRequest,
  MAX_TOKEN_LENGTH,
  TOKEN_LENGTH,
  TOKEN_PREFIX,
} from "./token-issue.ts";

/** Storage key of the HMAC key that token hashes are computed with. */
const TOKEN_HMAC_KEY = "auth/token/hmac-key";
/**
 * Storage key of the single root token of Keyward versions before token
 * records, stored as a plain SHA-256 hash. It is moved to a record at its
 * first use.
 */
const LEGACY_ROOT_KEY = "auth/token/root";

/** Characters of the accessors Keyward generates (base64url). */
const ACCESSOR_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Tokens followed at most when checking a token's parents. */
const MAX_PARENT_DEPTH = 64;

/** The identity a request acts as once its token is checked. */
export interface Identity {
  /** A stable, non-secret identifier of the token (never the token itself). */
  accessor: string;
  displayName: string;
  policies: string[];
  /**
   * The token's record as of this request, after the request's use was
   * counted. A token on its last use is already revoked, so handlers that
   * act on the caller's own token read it from here.
   */
  record?: TokenRecord;
}

export interface TokenStoreOptions {
  /** Source of the current time, which tests fix. */
  clock?: () => Date;
  /** Receives why a token was rejected, never the token itself. */
  logger?: TokenLogger;
}

/** The subset of pino's logger the token store and AppRole use. */
export interface TokenLogger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
}

const silentLogger: TokenLogger = { info() {}, warn() {} };

/** Returns the one error every unusable token gets, whatever the reason. The log records why. */
function permissionDenied(): KeywardError {
  return new KeywardError("permission_denied", "permission denied");
}

function identityOf(record: TokenRecord): Identity {
  return {
    accessor: record.accessor,
    displayName: record.displayName,
    policies: [...record.policies],
    record,
  };
}

/**
 * Vault's token model: tokens with policies, a TTL and max TTL, optional
 * use limits, parents and children. Revoking a token revokes its
 * descendants. A token is valid only while it and all its parents exist and
 * have not expired. Expired tokens are revoked when next seen and by
 * `revokeExpired`.
 *
 * Writes run one at a time under a mutex, and reads do not wait for them.
 */
export class TokenStore {
  /** Token roles (`auth/token/roles/<name>`), whose settings `create` applies. */
  readonly roles: TokenRoleStore;
  readonly #barrier: Barrier;
  readonly #repository: TokenRepository;
  readonly #hmacKey: BarrierHmacKey;
  readonly #clock: () => Date;
  readonly #logger: TokenLogger;
  readonly #writes = new Mutex();
  /** Set once no legacy root token is left to move, and reset at seal. */
  #legacyRootGone = false;

  constructor(barrier: Barrier, options: TokenStoreOptions = {}) {
    this.#barrier = barrier;
    this.roles = new TokenRoleStore(barrier);
    this.#repository = new TokenRepository(barrier);
    this.#hmacKey = new BarrierHmacKey(barrier, TOKEN_HMAC_KEY);
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Stores a root token (generated unless given) and returns it: policy
   * `root`, no expiry, no parent. A given token that is already a root
   * token is kept as it is. Earlier root tokens stay valid until revoked.
   */
  async createRootToken(token: string = generateToken()): Promise<string> {
    checkTokenLength(token, "root_token");
    const hash = await this.#hash(token);
    return this.#writes.run(async () => {
      const existing = await this.#repository.load(hash);
      if (existing !== undefined) {
        if (isRootPolicySet(existing.policies)) return token;
        throw new KeywardError("already_exists", "a non-root token with this ID already exists", {
          field: "root_token",
        });
      }
      const record = rootTokenRecord(hash, this.#now());
      await this.#repository.insert(record);
      this.#logger.info({ accessor: record.accessor }, "created root token");
      return token;
    });
  }

  /** Reports whether any root token exists. Reads every record, so it is for rare use. */
  async hasRootToken(): Promise<boolean> {
    if ((await this.#barrier.get(LEGACY_ROOT_KEY)) !== undefined) return true;
    for (const hash of await this.#repository.listHashes()) {
      const record = await this.#repository.load(hash);
      if (record !== undefined && isRootPolicySet(record.policies)) return true;
    }
    return false;
  }

  /** Returns the store's current time in Unix milliseconds, for computing remaining TTLs. */
  currentTime(): number {
    return this.#now();
  }

  /** Forgets cached records and the HMAC key, so the next read goes to the barrier (and fails while sealed). */
  clearCache(): void {
    this.#repository.clearCache();
    this.#hmacKey.clear();
    this.#legacyRootGone = false;
  }

  /**
   * Returns the identity of a valid token, or undefined. Counts no use and
   * checks no CIDR binding: request authentication must use `authenticate`.
   */
  async lookup(token: string): Promise<Identity | undefined> {
    const record = await this.#validRecord(token);
    return record === undefined ? undefined : identityOf(record);
  }

  /**
   * Authenticates a request: checks that the token exists, has not expired,
   * has valid parents and is used from an address in its bound CIDRs, then
   * counts one use. A token on its last use is revoked here, with its
   * descendants, and the returned identity carries its final record.
   * Throws `permission_denied` for every failure.
   */
  async authenticate(token: string, context: { sourceIp?: string } = {}): Promise<Identity> {
    const record = await this.#validRecord(token);
    if (record === undefined) throw permissionDenied();
    if (record.boundCidrs.length > 0) {
      const address = context.sourceIp;
      if (address === undefined || !addressInCidrs(address, record.boundCidrs)) {
        this.#reject(record, "the source address is outside the token's bound CIDRs", address);
        throw permissionDenied();
      }
    }
    if (record.numUses === 0) return identityOf(record);
    return identityOf(await this.#consumeUse(record.hash));
  }

  /**
   * Creates a token for `caller`: a child of the caller's token unless
   * `orphan` is set, a root caller sets `noParent` or the role named
   * `roleName` makes orphans. A role's settings apply as Vault applies them. Throws
   * `permission_denied` when a non-root caller sets `id`, `period` or
   * `noParent` (outside the orphan route),
   * requests policies its token lacks, or has a use-limited token.
   */
  async create(
    caller: Identity,
    request: CreateTokenRequest,
    options: { orphan?: boolean; roleName?: string } = {},
  ): Promise<IssuedToken> {
    const callerIsRoot = isRootPolicySet(caller.policies);
    const role =
      options.roleName === undefined ? undefined : await this.roles.read(options.roleName);
    checkCreateOptions(request, callerIsRoot, options.orphan === true || role?.orphan === true);
    const callerRecord = caller.record;
    if (callerRecord === undefined) throw permissionDenied();
    const token = request.id ?? generateToken();
    const hash = await this.#hash(token);
    const orphan = options.orphan === true || (request.noParent === true && callerIsRoot);

    return this.#writes.run(async () => {
      // Read the parent again inside the lock, so a child is never added to a token being revoked.
      const parent = await this.#repository.load(callerRecord.hash);
      if (parent === undefined || isExpired(parent, this.#now())) {
        this.#reject(callerRecord, "the token was revoked or expired before its child was created");
        throw permissionDenied();
      }
      const { record, warnings } = createdTokenRecord(
        hash,
        parent,
        request,
        orphan,
        this.#now(),
        role,
      );
      await this.#repository.insert(record);
      this.#logger.info(
        {
          accessor: record.accessor,
          parentAccessor: record.parentHash === "" ? undefined : parent.accessor,
          policies: record.policies,
          role: record.role,
        },
        "created token",
      );
      return { token, record, warnings };
    });
  }

  /** Issues an orphan token for a login through an auth method such as AppRole. */
  async issueLoginToken(request: LoginTokenRequest): Promise<IssuedToken> {
    const token = generateToken();
    const hash = await this.#hash(token);
    const { record, warnings } = loginTokenRecord(hash, request, this.#now());
    await this.#writes.run(() => this.#repository.insert(record));
    this.#logger.info({ accessor: record.accessor, path: request.path }, "issued login token");
    return { token, record, warnings };
  }

  /** Returns the record of a valid token. Throws `permission_denied` otherwise. */
  async resolveToken(token: string): Promise<TokenRecord> {
    const record = await this.#validRecord(token);
    if (record === undefined) throw permissionDenied();
    return record;
  }

  /** Returns the record of a valid token by its accessor. Throws `invalid_field` on `accessor` otherwise. */
  async resolveAccessor(accessor: string): Promise<TokenRecord> {
    const invalid = () => invalidField("accessor", "no valid token has this accessor");
    // Accessors become storage key segments, so anything but an accessor's characters is rejected first.
    if (!ACCESSOR_PATTERN.test(accessor)) throw invalid();
    const hash = await this.#repository.hashForAccessor(accessor);
    if (hash === undefined) throw invalid();
    const record = await this.#validByHash(hash);
    if (record === undefined) throw invalid();
    return record;
  }

  /**
   * Renews a token: see `renewedExpiry`. `increment` is in seconds. Throws
   * `invalid_request` for a token that is not renewable and
   * `permission_denied` for one that is no longer valid.
   */
  async renew(
    target: TokenRecord,
    increment?: number,
  ): Promise<{ record: TokenRecord; warnings: string[] }> {
    return this.#writes.run(async () => {
      const current = await this.#validByHash(target.hash, true);
      if (current === undefined) throw permissionDenied();
      if (!current.renewable || current.expiresAt === null) {
        throw new KeywardError("invalid_request", "the token is not renewable");
      }
      const now = this.#now();
      const { expiresAt, warnings } = renewedExpiry(current, increment, now);
      const record = freezeRecord({ ...current, expiresAt, lastRenewedAt: now });
      await this.#repository.update(record);
      return { record, warnings };
    });
  }

  /** Revokes a token and all its descendants. Revoking a token that is gone does nothing. */
  async revoke(target: TokenRecord): Promise<void> {
    await this.#writes.run(() => this.#revokeTree(target.hash, "revoked"));
  }

  /** Revokes a token and makes its direct children orphans. */
  async revokeOrphan(target: TokenRecord): Promise<void> {
    await this.#writes.run(async () => {
      const deleted = await this.#repository.deleteOrphaningChildren(target.hash);
      if (deleted !== undefined) {
        this.#logger.info({ accessor: deleted.accessor }, "revoked token, children made orphans");
      }
    });
  }

  /** Returns every token's accessor, in ascending order. */
  async listAccessors(): Promise<string[]> {
    return this.#repository.listAccessors();
  }

  /**
   * Revokes every expired token and every token whose parent no longer
   * exists, with their descendants, and returns how many records went.
   * For a scheduled job, because it reads every record.
   */
  async revokeExpired(): Promise<number> {
    let revoked = 0;
    for (const hash of await this.#repository.listHashes()) {
      const record = await this.#repository.load(hash);
      if (record === undefined) continue;
      const parentGone =
        record.parentHash !== "" && (await this.#repository.load(record.parentHash)) === undefined;
      if (!isExpired(record, this.#now()) && !parentGone) continue;
      revoked += await this.#writes.run(() =>
        this.#revokeTree(hash, parentGone ? "parent revoked" : "expired"),
      );
    }
    return revoked;
  }

  #now(): number {
    return this.#clock().getTime();
  }

  #hash(token: string): Promise<string> {
    return this.#hmacKey.digest(token);
  }

  /** Returns the record of a valid token, or undefined. Checks the HMAC in constant time. */
  async #validRecord(token: string): Promise<TokenRecord | undefined> {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = await this.#hash(token);
    let record = await this.#validByHash(hash);
    if (record === undefined && !this.#legacyRootGone) {
      record = await this.#migrateLegacyRoot(token, hash);
    }
    if (record === undefined) return undefined;
    // The record was found by its hash, so this holds. The constant-time
    // check keeps that true even if the lookup ever becomes approximate.
    if (!constantTimeEqual(Buffer.from(record.hash, "hex"), Buffer.from(hash, "hex"))) {
      return undefined;
    }
    return record;
  }

  /**
   * Returns the record if it exists, has not expired and all its parents are
   * valid, and revokes what has expired. Set `locked` when the caller holds
   * the write lock, because the mutex is not re-entrant.
   */
  async #validByHash(hash: string, locked = false): Promise<TokenRecord | undefined> {
    const record = await this.#repository.load(hash);
    if (record === undefined) return undefined;
    const now = this.#now();
    let current: TokenRecord = record;
    for (let depth = 0; ; depth++) {
      if (isExpired(current, now)) {
        this.#reject(record, current === record ? "expired" : "a parent token expired");
        const expired = current.hash;
        if (locked) await this.#revokeTree(expired, "expired");
        else await this.#writes.run(() => this.#revokeTree(expired, "expired"));
        return undefined;
      }
      if (current.parentHash === "") return record;
      if (depth >= MAX_PARENT_DEPTH) {
        this.#reject(record, `the token has more than ${MAX_PARENT_DEPTH} parents`);
        return undefined;
      }
      const parent = await this.#repository.load(current.parentHash);
      if (parent === undefined) {
        this.#reject(record, "a parent token was revoked");
        return undefined;
      }
      current = parent;
    }
  }

  /** Counts one use of a use-limited token and revokes it at its last use. */
  #consumeUse(hash: string): Promise<TokenRecord> {
    return this.#writes.run(async () => {
      const taken = await this.#repository.takeUse(hash);
      if (taken === undefined) throw permissionDenied();
      if (!taken.last) return taken.record;
      // The last use deleted the token's record; its descendants go now, and
      // this request acts with the record it was granted.
      const descendants = await this.#repository.deleteTree(hash);
      this.#logger.info(
        {
          accessor: taken.record.accessor,
          reason: "use limit reached",
          descendants: descendants.length,
        },
        "revoked token",
      );
      return taken.record;
    });
  }

  /** Deletes a token and its descendants and returns the number of records deleted. The caller has the write lock. */
  async #revokeTree(hash: string, reason: string): Promise<number> {
    const deleted = await this.#repository.deleteTree(hash);
    const [first, ...descendants] = deleted;
    if (first !== undefined) {
      this.#logger.info(
        { accessor: first.accessor, reason, descendants: descendants.length },
        "revoked token",
      );
    }
    return deleted.length;
  }

  /**
   * Moves a root token stored by earlier Keyward versions (a plain SHA-256
   * hash under `auth/token/root`) to a record, when `token` is that token.
   */
  async #migrateLegacyRoot(token: string, hash: string): Promise<TokenRecord | undefined> {
    const stored = await this.#barrier.get(LEGACY_ROOT_KEY);
    if (stored === undefined) {
      this.#legacyRootGone = true;
      return undefined;
    }
    const legacy = JSON.parse(Buffer.from(stored).toString("utf8")) as {
      hash: string;
      accessor: string;
    };
    const presented = createHash("sha256").update(token, "utf8").digest();
    if (!constantTimeEqual(presented, Buffer.from(legacy.hash, "hex"))) return undefined;
    return this.#writes.run(async () => {
      const existing = await this.#repository.load(hash);
      if (existing !== undefined) return existing;
      const record = rootTokenRecord(hash, this.#now(), legacy.accessor);
      await this.#repository.insert(record);
      await this.#barrier.delete(LEGACY_ROOT_KEY);
      this.#logger.info(
        { accessor: record.accessor },
        "moved the legacy root token to a token record",
      );
      return record;
    });
  }

  #reject(record: TokenRecord, reason: string, sourceIp?: string): void {
    this.#logger.info({ accessor: record.accessor, reason, sourceIp }, "token rejected");
  }
}
