import { KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import type { StorageWriter } from "../../storage/storage.ts";
import type { AppRole } from "./role.ts";
import type { SecretIdRecord } from "./secret-id.ts";

/** Roles by name: `auth/approle/role/<name>`. */
/** Storage prefix of everything the AppRole backend keeps. */
export const APPROLE_STORAGE_PREFIX = "auth/approle/";
const ROLE_PREFIX = "auth/approle/role/";
/** Role ID index: `auth/approle/role-id/<HMAC of the role ID>` contains the role name. */
const ROLE_ID_PREFIX = "auth/approle/role-id/";
/** Secret IDs: `auth/approle/secret-id/<role name>/<HMAC of the secret ID>`. */
const SECRET_ID_PREFIX = "auth/approle/secret-id/";
/** Accessor index: `auth/approle/secret-id-accessor/<role name>/<accessor>` contains the secret ID's HMAC. */
const ACCESSOR_PREFIX = "auth/approle/secret-id-accessor/";

function encode(value: object): Uint8Array {
  return Buffer.from(JSON.stringify(value), "utf8");
}

function decode<T>(key: string, value: Uint8Array): T {
  try {
    return Object.freeze(JSON.parse(Buffer.from(value).toString("utf8"))) as T;
  } catch (error) {
    throw new KeywardError("storage_failure", `the AppRole record at ${key} is not valid JSON`, {
      cause: error,
    });
  }
}

function text(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value).toString("utf8");
}

function leaves(entries: string[]): string[] {
  return entries.filter((entry) => !entry.endsWith("/"));
}

/** AppRole's layout in the barrier. The caller serialises writes per role. */
export class AppRoleRepository {
  readonly #barrier: Barrier;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async listRoles(): Promise<string[]> {
    return leaves(await this.#barrier.list(ROLE_PREFIX));
  }

  async loadRole(name: string): Promise<AppRole | undefined> {
    const key = ROLE_PREFIX + name;
    const stored = await this.#barrier.get(key);
    return stored === undefined ? undefined : decode<AppRole>(key, stored);
  }

  async roleNameForRoleId(roleIdHmac: string): Promise<string | undefined> {
    return text(await this.#barrier.get(ROLE_ID_PREFIX + roleIdHmac));
  }

  /**
   * Stores a role and points its role ID's index entry at it, removing the
   * entry of its previous role ID. Throws `already_exists` on `role_id`
   * when another role has the role ID.
   */
  async saveRole(role: AppRole, roleIdHmac: string, previousRoleIdHmac?: string): Promise<void> {
    await this.#barrier.transaction(async (tx) => {
      const owner = text(await tx.get(ROLE_ID_PREFIX + roleIdHmac));
      if (owner !== undefined && owner !== role.name) {
        throw new KeywardError("already_exists", "another role already has this role ID", {
          field: "role_id",
        });
      }
      if (previousRoleIdHmac !== undefined && previousRoleIdHmac !== roleIdHmac) {
        await tx.delete(ROLE_ID_PREFIX + previousRoleIdHmac);
      }
      await tx.put(ROLE_ID_PREFIX + roleIdHmac, Buffer.from(role.name, "utf8"));
      await tx.put(ROLE_PREFIX + role.name, encode(role));
    });
  }

  /** Deletes a role, its role ID index entry and all its secret IDs in one transaction. */
  async deleteRole(name: string, roleIdHmac: string): Promise<void> {
    const secretIds = await this.listSecretIdHmacs(name);
    const accessors = await this.listAccessors(name);
    await this.#barrier.transaction(async (tx) => {
      await tx.delete(ROLE_PREFIX + name);
      await tx.delete(ROLE_ID_PREFIX + roleIdHmac);
      for (const hmac of secretIds) await tx.delete(`${SECRET_ID_PREFIX}${name}/${hmac}`);
      for (const accessor of accessors) await tx.delete(`${ACCESSOR_PREFIX}${name}/${accessor}`);
    });
  }

  async loadSecretId(roleName: string, hmac: string): Promise<SecretIdRecord | undefined> {
    const key = `${SECRET_ID_PREFIX}${roleName}/${hmac}`;
    const stored = await this.#barrier.get(key);
    return stored === undefined ? undefined : decode<SecretIdRecord>(key, stored);
  }

  /** Returns the HMAC of the secret ID with this accessor, or undefined (also for a malformed accessor). */
  async hmacForAccessor(roleName: string, accessor: string): Promise<string | undefined> {
    // Accessors become storage key segments. Generated ones are UUIDs.
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(accessor)) return undefined;
    return text(await this.#barrier.get(`${ACCESSOR_PREFIX}${roleName}/${accessor}`));
  }

  async listAccessors(roleName: string): Promise<string[]> {
    return leaves(await this.#barrier.list(`${ACCESSOR_PREFIX}${roleName}/`));
  }

  async listSecretIdHmacs(roleName: string): Promise<string[]> {
    return leaves(await this.#barrier.list(`${SECRET_ID_PREFIX}${roleName}/`));
  }

  async insertSecretId(record: SecretIdRecord): Promise<void> {
    await this.#barrier.transaction(async (tx) => {
      await tx.put(`${SECRET_ID_PREFIX}${record.roleName}/${record.hmac}`, encode(record));
      await tx.put(
        `${ACCESSOR_PREFIX}${record.roleName}/${record.accessor}`,
        Buffer.from(record.hmac, "utf8"),
      );
    });
  }

  /**
   * Counts one use of a use-limited secret ID in a transaction that reads
   * the stored record, deleting it at its last use, so nodes sharing the
   * storage never grant more logins than its limit between them. Returns
   * false when the secret ID is gone (used up or deleted meanwhile).
   */
  async takeSecretIdUse(record: SecretIdRecord, now: number): Promise<boolean> {
    const key = `${SECRET_ID_PREFIX}${record.roleName}/${record.hmac}`;
    return this.#barrier.transaction(async (tx) => {
      const value = await tx.get(key);
      if (value === undefined) return false;
      const current = decode<SecretIdRecord>(key, value);
      if (current.numUses === 0) return true;
      if (current.numUses === 1) {
        await this.#deleteSecretIdIn(tx, current);
        return true;
      }
      const used = Object.freeze({ ...current, numUses: current.numUses - 1, lastUpdatedAt: now });
      await tx.put(key, encode(used));
      return true;
    });
  }

  async deleteSecretId(record: SecretIdRecord): Promise<void> {
    await this.#barrier.transaction((tx) => this.#deleteSecretIdIn(tx, record));
  }

  async #deleteSecretIdIn(tx: StorageWriter, record: SecretIdRecord): Promise<void> {
    await tx.delete(`${SECRET_ID_PREFIX}${record.roleName}/${record.hmac}`);
    await tx.delete(`${ACCESSOR_PREFIX}${record.roleName}/${record.accessor}`);
  }
}
