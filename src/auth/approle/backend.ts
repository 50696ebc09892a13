import { randomUUID } from "node:crypto";
import { constantTimeEqual } from "../../crypto/compare.ts";
import { KeywardError, notFound } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import { addressInCidrs } from "../cidr.ts";
import { BarrierHmacKey } from "../hmac-key.ts";
import {
  LoginRateLimiter,
  type LoginRateLimiterOptions,
  rateLimitSource,
} from "../rate-limiter.ts";
import { normalisePolicies } from "../token-policies.ts";
import type { IssuedToken, TokenLogger, TokenStore } from "../token-store.ts";
import { AppRoleRepository } from "./repository.ts";
import {
  type AppRole,
  applyRoleSettings,
  checkRoleId,
  checkRoleName,
  type RoleSettings,
} from "./role.ts";
import {
  isSecretIdExpired,
  type SecretIdRecord,
  type SecretIdRequest,
  secretIdLimits,
} from "./secret-id.ts";

/** Storage key of the HMAC key that role IDs and secret IDs are hashed with. */
const APPROLE_HMAC_KEY = "auth/approle/hmac-key";
export const APPROLE_LOGIN_PATH = "auth/approle/login";

export interface AppRoleBackendOptions {
  clock?: () => Date;
  /** Receives why a login failed, never a secret ID. */
  logger?: TokenLogger;
  /** Limits of failed logins, per source address and per role ID. */
  rateLimit?: LoginRateLimiterOptions;
}

export interface LoginCredentials {
  roleId: string;
  secretId?: string;
}

/** A failed credential check. The caller gets one fixed message and the log gets `reason`. */
class LoginFailure extends Error {
  readonly reason: string;
  readonly roleName: string | undefined;
  readonly secretIdAccessor: string | undefined;

  constructor(reason: string, roleName?: string, secretIdAccessor?: string) {
    super(reason);
    this.reason = reason;
    this.roleName = roleName;
    this.secretIdAccessor = secretIdAccessor;
  }
}

const silentLogger: TokenLogger = { info() {}, warn() {} };

/**
 * The AppRole auth method: roles that issue tokens to machines presenting
 * a role ID and, unless the role sets `bindSecretId` to false, a secret ID. Secret IDs
 * are stored only as HMACs, expire, count their uses and may be bound to
 * CIDR blocks. A failed login changes nothing and counts against the
 * rate limits of its source address and role ID.
 *
 * Writes and logins for one role run one at a time.
 */
export class AppRoleBackend {
  readonly #repository: AppRoleRepository;
  readonly #hmacKey: BarrierHmacKey;
  readonly #tokens: TokenStore;
  readonly #clock: () => Date;
  readonly #logger: TokenLogger;
  readonly #addressLimiter: LoginRateLimiter;
  readonly #roleIdLimiter: LoginRateLimiter;
  readonly #roleLock = new KeyedLock();

  constructor(barrier: Barrier, tokens: TokenStore, options: AppRoleBackendOptions = {}) {
    this.#repository = new AppRoleRepository(barrier);
    this.#hmacKey = new BarrierHmacKey(barrier, APPROLE_HMAC_KEY);
    this.#tokens = tokens;
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#addressLimiter = new LoginRateLimiter(options.rateLimit);
    // A successful login proves the caller has a secret ID of this role, so it clears the role ID's count.
    this.#roleIdLimiter = new LoginRateLimiter({ ...options.rateLimit, resetOnSuccess: true });
  }

  /** Drops the cached HMAC key. Call it at seal. */
  clearCache(): void {
    this.#hmacKey.clear();
  }

  listRoles(): Promise<string[]> {
    return this.#repository.listRoles();
  }

  /** Returns a role. Throws `not_found`. */
  async readRole(name: string): Promise<AppRole> {
    checkRoleName(name);
    const role = await this.#repository.loadRole(name);
    if (role === undefined) throw notFound(`role "${name}"`);
    return role;
  }

  /** Creates a role (with a generated role ID) or updates the fields given. */
  async writeRole(name: string, settings: RoleSettings): Promise<AppRole> {
    checkRoleName(name);
    return this.#roleLock.run(name, async () => {
      const existing = await this.#repository.loadRole(name);
      const roleId = existing?.roleId ?? randomUUID();
      const role = applyRoleSettings(name, roleId, existing, settings);
      const roleIdHmac = await this.#hmacKey.digest(roleId);
      await this.#repository.saveRole(role, roleIdHmac);
      this.#logger.info({ role: name, created: existing === undefined }, "wrote AppRole role");
      return role;
    });
  }

  /** Deletes a role and all its secret IDs. Deleting a missing role does nothing. */
  async deleteRole(name: string): Promise<void> {
    checkRoleName(name);
    return this.#roleLock.run(name, async () => {
      const role = await this.#repository.loadRole(name);
      if (role === undefined) return;
      await this.#repository.deleteRole(name, await this.#hmacKey.digest(role.roleId));
      this.#logger.info({ role: name }, "deleted AppRole role");
    });
  }

  async readRoleId(name: string): Promise<string> {
    return (await this.readRole(name)).roleId;
  }

  /** Replaces a role's role ID. Throws `already_exists` when another role has it. */
  async setRoleId(name: string, roleId: string): Promise<void> {
    checkRoleName(name);
    checkRoleId(roleId);
    return this.#roleLock.run(name, async () => {
      const role = await this.#repository.loadRole(name);
      if (role === undefined) throw notFound(`role "${name}"`);
      const updated = Object.freeze({ ...role, roleId });
      await this.#repository.saveRole(
        updated,
        await this.#hmacKey.digest(roleId),
        await this.#hmacKey.digest(role.roleId),
      );
      this.#logger.info({ role: name }, "replaced AppRole role ID");
    });
  }

  /**
   * Issues a secret ID for a role, random or chosen by the caller. Returns
   * it (shown once) with its record. Throws `already_exists` when a chosen
   * secret ID is already the role's.
   */
  async generateSecretId(
    name: string,
    request: SecretIdRequest,
  ): Promise<{ secretId: string; record: SecretIdRecord }> {
    checkRoleName(name);
    return this.#roleLock.run(name, async () => {
      const role = await this.#repository.loadRole(name);
      if (role === undefined) throw notFound(`role "${name}"`);
      const limits = secretIdLimits(role, request);
      const secretId = request.secretId ?? randomUUID();
      const hmac = await this.#hmacKey.digest(secretId);
      if (
        request.secretId !== undefined &&
        (await this.#repository.loadSecretId(name, hmac)) !== undefined
      ) {
        throw new KeywardError("already_exists", "the role already has this secret ID", {
          field: "secret_id",
        });
      }
      const now = this.#now();
      const record: SecretIdRecord = Object.freeze({
        hmac,
        accessor: randomUUID(),
        roleName: name,
        cidrList: limits.cidrList,
        tokenBoundCidrs: limits.tokenBoundCidrs,
        metadata: { ...(request.metadata ?? {}) },
        createdAt: now,
        lastUpdatedAt: now,
        expiresAt: limits.ttl > 0 ? now + limits.ttl * 1000 : null,
        numUses: limits.numUses,
        ttl: limits.ttl,
      });
      await this.#repository.insertSecretId(record);
      this.#logger.info({ role: name, secretIdAccessor: record.accessor }, "issued secret ID");
      return { secretId, record };
    });
  }

  /** Returns the accessors of a role's secret IDs. Throws `not_found` for a missing role. */
  async listSecretIdAccessors(name: string): Promise<string[]> {
    await this.readRole(name);
    return this.#repository.listAccessors(name);
  }

  /** Returns a secret ID's record. Throws `not_found` when the role has no such (unexpired) secret ID. */
  async lookupSecretId(name: string, secretId: string): Promise<SecretIdRecord> {
    checkRoleName(name);
    const record = await this.#repository.loadSecretId(name, await this.#hmacKey.digest(secretId));
    return this.#live(record);
  }

  async lookupSecretIdAccessor(name: string, accessor: string): Promise<SecretIdRecord> {
    checkRoleName(name);
    const hmac = await this.#repository.hmacForAccessor(name, accessor);
    const record = hmac === undefined ? undefined : await this.#repository.loadSecretId(name, hmac);
    return this.#live(record);
  }

  /** Deletes a secret ID. Deleting one that does not exist does nothing, as in Vault. */
  async destroySecretId(name: string, secretId: string): Promise<void> {
    checkRoleName(name);
    const hmac = await this.#hmacKey.digest(secretId);
    await this.#destroy(name, hmac);
  }

  async destroySecretIdAccessor(name: string, accessor: string): Promise<void> {
    checkRoleName(name);
    const hmac = await this.#repository.hmacForAccessor(name, accessor);
    if (hmac !== undefined) await this.#destroy(name, hmac);
  }

  /**
   * Logs in with a role ID and secret ID from `sourceAddress` and returns
   * a new token. Throws `rate_limited` when the address or role ID has
   * failed too often, and `permission_denied` with one fixed message for
   * every wrong credential, so the response does not say which part was
   * wrong. A failed login changes nothing stored.
   */
  async login(credentials: LoginCredentials, sourceAddress: string): Promise<IssuedToken> {
    const addressKey = `address:${rateLimitSource(sourceAddress)}`;
    const roleIdKey = `role_id:${credentials.roleId}`;
    this.#addressLimiter.check(addressKey);
    this.#roleIdLimiter.check(roleIdKey);
    try {
      const issued = await this.#login(credentials, sourceAddress);
      this.#addressLimiter.succeed(addressKey);
      this.#roleIdLimiter.succeed(roleIdKey);
      return issued;
    } catch (error) {
      if (!(error instanceof LoginFailure)) throw error;
      this.#addressLimiter.fail(addressKey);
      this.#roleIdLimiter.fail(roleIdKey);
      this.#logger.info(
        {
          role: error.roleName,
          secretIdAccessor: error.secretIdAccessor,
          sourceAddress,
          reason: error.reason,
        },
        "AppRole login failed",
      );
      throw new KeywardError("permission_denied", "invalid role_id or secret_id");
    }
  }

  /** Deletes every expired secret ID and returns how many went. For a scheduled job. */
  async tidy(): Promise<number> {
    let deleted = 0;
    for (const name of await this.#repository.listRoles()) {
      for (const hmac of await this.#repository.listSecretIdHmacs(name)) {
        const record = await this.#repository.loadSecretId(name, hmac);
        if (record !== undefined && isSecretIdExpired(record, this.#now())) {
          await this.#destroy(name, hmac);
          deleted++;
        }
      }
    }
    return deleted;
  }

  #now(): number {
    return this.#clock().getTime();
  }

  #live(record: SecretIdRecord | undefined): SecretIdRecord {
    if (record === undefined || isSecretIdExpired(record, this.#now())) {
      throw notFound("secret ID");
    }
    return record;
  }

  #destroy(name: string, hmac: string): Promise<void> {
    return this.#roleLock.run(name, async () => {
      const record = await this.#repository.loadSecretId(name, hmac);
      if (record === undefined) return;
      await this.#repository.deleteSecretId(record);
      this.#logger.info({ role: name, secretIdAccessor: record.accessor }, "destroyed secret ID");
    });
  }

  async #login(credentials: LoginCredentials, sourceAddress: string): Promise<IssuedToken> {
    const roleIdHmac = await this.#hmacKey.digest(credentials.roleId);
    const name = await this.#repository.roleNameForRoleId(roleIdHmac);
    if (name === undefined) throw new LoginFailure("unknown role_id");

    return this.#roleLock.run(name, async () => {
      const role = await this.#repository.loadRole(name);
      if (role === undefined) throw new LoginFailure("the role was deleted", name);
      const storedRoleIdHmac = Buffer.from(await this.#hmacKey.digest(role.roleId), "hex");
      if (!constantTimeEqual(storedRoleIdHmac, Buffer.from(roleIdHmac, "hex"))) {
        throw new LoginFailure("the role ID was replaced", name);
      }
      checkAddress(
        sourceAddress,
        role.secretIdBoundCidrs,
        "the role's secret_id_bound_cidrs",
        name,
      );
      checkAddress(sourceAddress, role.tokenBoundCidrs, "the role's token_bound_cidrs", name);

      const secret = role.bindSecretId
        ? await this.#checkSecretId(role, credentials.secretId, sourceAddress)
        : undefined;

      const issued = await this.#tokens.issueLoginToken({
        policies: normalisePolicies(role.tokenPolicies, !role.tokenNoDefaultPolicy),
        meta: { ...(secret?.metadata ?? {}), role_name: name },
        displayName: "approle",
        path: APPROLE_LOGIN_PATH,
        ttl: role.tokenTtl,
        maxTtl: role.tokenMaxTtl,
        explicitMaxTtl: role.tokenExplicitMaxTtl,
        period: role.tokenPeriod,
        numUses: role.tokenNumUses,
        boundCidrs: [
          ...(secret !== undefined && secret.tokenBoundCidrs.length > 0
            ? secret.tokenBoundCidrs
            : role.tokenBoundCidrs),
        ],
      });
      if (secret !== undefined && secret.numUses > 0) {
        await this.#consumeSecretIdUse(secret, issued);
      }
      this.#logger.info(
        { role: name, secretIdAccessor: secret?.accessor, accessor: issued.record.accessor },
        "AppRole login",
      );
      return issued;
    });
  }

  /** Checks a presented secret ID against the role. Throws `LoginFailure`. */
  async #checkSecretId(
    role: AppRole,
    secretId: string | undefined,
    sourceAddress: string,
  ): Promise<SecretIdRecord> {
    if (secretId === undefined || secretId === "") {
      throw new LoginFailure("missing secret_id", role.name);
    }
    const hmac = await this.#hmacKey.digest(secretId);
    const secret = await this.#repository.loadSecretId(role.name, hmac);
    if (secret === undefined) throw new LoginFailure("unknown secret_id", role.name);
    if (!constantTimeEqual(Buffer.from(secret.hmac, "hex"), Buffer.from(hmac, "hex"))) {
      throw new LoginFailure("unknown secret_id", role.name);
    }
    if (isSecretIdExpired(secret, this.#now())) {
      // Left in place, because a failed login changes nothing. `tidy` deletes it.
      throw new LoginFailure("expired secret_id", role.name, secret.accessor);
    }
    checkAddress(
      sourceAddress,
      secret.cidrList,
      "the secret ID's cidr_list",
      role.name,
      secret.accessor,
    );
    return secret;
  }

  /**
   * Counts one use of a secret ID after its token was issued, deleting the
   * secret ID at its last use. When that write fails the token is revoked,
   * so a login either consumes a use and returns a token or does neither.
   */
  async #consumeSecretIdUse(secret: SecretIdRecord, issued: IssuedToken): Promise<void> {
    try {
      if (!(await this.#repository.takeSecretIdUse(secret, this.#now()))) {
        // Another node took the last use between the check and now.
        throw new LoginFailure("unknown secret_id", secret.roleName, secret.accessor);
      }
    } catch (error) {
      await this.#tokens.revoke(issued.record).catch((revokeError: unknown) => {
        this.#logger.warn(
          { err: revokeError, accessor: issued.record.accessor },
          "failed to revoke the token of a login whose secret ID use could not be stored",
        );
      });
      throw error;
    }
  }
}

function checkAddress(
  address: string,
  cidrs: readonly string[],
  what: string,
  roleName: string,
  secretIdAccessor?: string,
): void {
  if (cidrs.length > 0 && !addressInCidrs(address, cidrs)) {
    throw new LoginFailure(`the source address is outside ${what}`, roleName, secretIdAccessor);
  }
}
