/**
 * The KMIP roles and the records of the client credentials issued for
 * them, stored behind the barrier. Roles are at `kmip/roles/<name>` and
 * credentials at `kmip/credentials/<role>/<serial>`. Keying credentials by
 * role means that listing them and deleting them with the role need no
 * index.
 */
import { KeywardError, notFound } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";

export const KMIP_ROLES_PREFIX = "kmip/roles/";
export const KMIP_CREDENTIALS_PREFIX = "kmip/credentials/";

/** Role names: letters, digits, `.`, `_` and `-`, starting with a letter or digit. */
const ROLE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Serial numbers as Keyward writes them: lower-case hex without leading zero bytes. */
const SERIAL_PATTERN = /^[0-9a-f]{2,40}$/;

/** A KMIP role: the policies of the clients that map to it and how its credentials are made. */
export interface KmipRole {
  name: string;
  /** Keyward ACL policies of the role's clients. */
  policies: string[];
  /**
   * Globs (`*` for any run of characters) that a certificate from the
   * external client CA must match with its subject CN to map to the role.
   */
  allowedCommonNames: string[];
  /** Default lifetime of an issued credential, in seconds. */
  ttlSeconds: number;
  /** Maximum lifetime of a credential, in seconds. */
  maxTtlSeconds: number;
  /** Key type and size of the private keys `credential/generate` makes. */
  keyType: "ec" | "rsa";
  keyBits: number;
}

/** The record of one issued client credential. */
export interface KmipCredentialRecord {
  serialNumber: string;
  role: string;
  commonName: string;
  /** SHA-256 of the certificate's DER, lower-case hex. */
  fingerprint: string;
  /** ISO 8601. */
  issuedAt: string;
  notAfter: string;
  /** ISO 8601 time of revocation; absent while the credential is valid. */
  revokedAt?: string;
}

/** Throws `invalid_field` naming `field` unless `name` is a valid role name. */
export function checkRoleName(name: string, field = "name"): void {
  if (!ROLE_NAME_PATTERN.test(name)) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      { field },
    );
  }
}

/** Returns a serial number in Keyward's form (lower-case hex, no colons or leading zero bytes), or throws `invalid_field`. */
export function normaliseSerialNumber(value: string, field = "serial_number"): string {
  const hex = value.toLowerCase().replace(/[:-]/g, "");
  const stripped = hex.replace(/^(00)+(?=[0-9a-f]{2})/, "");
  const even = stripped.length % 2 === 1 ? `0${stripped}` : stripped;
  if (!SERIAL_PATTERN.test(even)) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be a certificate serial number in hex, such as 1f:2a:… or 1f2a…`,
      { field },
    );
  }
  return even;
}

function encode(value: object): Uint8Array {
  return Buffer.from(JSON.stringify(value), "utf8");
}

function decode<T>(bytes: Uint8Array | undefined): T | undefined {
  return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString("utf8")) as T);
}

/**
 * Reads and writes roles and credential records. Each write bumps
 * `generation`, so that the identity resolver can drop what it cached.
 */
export class KmipIdentityStore {
  readonly #barrier: Barrier;
  #generation = 0;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  /** A counter that changes at every write of this store. */
  get generation(): number {
    return this.#generation;
  }

  /** Marks cached identities stale, for changes that other nodes made. */
  invalidate(): void {
    this.#generation += 1;
  }

  async listRoles(): Promise<string[]> {
    const names = await this.#barrier.list(KMIP_ROLES_PREFIX);
    return names.filter((name) => !name.endsWith("/")).sort();
  }

  async readRole(name: string): Promise<KmipRole | undefined> {
    if (!ROLE_NAME_PATTERN.test(name)) return undefined;
    return decode<KmipRole>(await this.#barrier.get(`${KMIP_ROLES_PREFIX}${name}`));
  }

  /** Returns the role or throws `not_found`. */
  async requireRole(name: string): Promise<KmipRole> {
    checkRoleName(name);
    const role = await this.readRole(name);
    if (role === undefined) throw notFound(`KMIP role "${name}"`);
    return role;
  }

  async writeRole(role: KmipRole): Promise<void> {
    checkRoleName(role.name);
    await this.#barrier.put(`${KMIP_ROLES_PREFIX}${role.name}`, encode(role));
    this.invalidate();
  }

  /** Deletes a role and the records of its credentials, so none of them maps to a role again. */
  async deleteRole(name: string): Promise<void> {
    checkRoleName(name);
    const prefix = `${KMIP_CREDENTIALS_PREFIX}${name}/`;
    const serials = await this.#barrier.list(prefix);
    await this.#barrier.transaction(async (tx) => {
      for (const serial of serials) await tx.delete(prefix + serial);
      await tx.delete(`${KMIP_ROLES_PREFIX}${name}`);
    });
    this.invalidate();
  }

  async listCredentials(role: string): Promise<string[]> {
    const serials = await this.#barrier.list(`${KMIP_CREDENTIALS_PREFIX}${role}/`);
    return serials.filter((serial) => !serial.endsWith("/")).sort();
  }

  async readCredential(
    role: string,
    serialNumber: string,
  ): Promise<KmipCredentialRecord | undefined> {
    if (!ROLE_NAME_PATTERN.test(role) || !SERIAL_PATTERN.test(serialNumber)) return undefined;
    return decode<KmipCredentialRecord>(
      await this.#barrier.get(`${KMIP_CREDENTIALS_PREFIX}${role}/${serialNumber}`),
    );
  }

  async writeCredential(record: KmipCredentialRecord): Promise<void> {
    await this.#barrier.put(
      `${KMIP_CREDENTIALS_PREFIX}${record.role}/${record.serialNumber}`,
      encode(record),
    );
    this.invalidate();
  }
}
