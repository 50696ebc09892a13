import { KeywardError, notFound } from "../../errors.ts";
import { CaAuthority } from "./ca.ts";
import { LegacyKeyInventory } from "./legacy-keys.ts";
import { normalizeSerial, RevocationRegistry } from "./revocation.ts";
import { revoke } from "./revoke.ts";
import { buildRole, validateRoleName } from "./roles.ts";
import {
  certificatePath,
  issueKeyPair,
  type SigningContext,
  type StoredCertificate,
  signPublicKey,
  toCertificateInfo,
} from "./signing.ts";
import { SshStore } from "./store.ts";
import type {
  CaInfo,
  CaKeyRequest,
  CaKind,
  CertificateRecord,
  IssueRequest,
  IssueResult,
  LegacyKeyInfo,
  Logger,
  Outcome,
  RequesterIdentity,
  RevokeRequest,
  RevokeResult,
  RoleWrite,
  SignRequest,
  SignResult,
  SshRole,
  SshServiceOptions,
} from "./types.ts";

const silentLogger: Logger = { info() {}, warn() {}, error() {} };

const ANONYMOUS: RequesterIdentity = { displayName: "", metadata: {} };

/** One known_hosts host pattern: a name with `*` and `?` wildcards, `[host]:port`, or `!` to negate. */
const HOST_PATTERN = /^[\w.*?:[\]!-]{1,255}$/;
/** Maximum length of a `host_pattern` list, in characters. */
const MAX_HOST_PATTERN_LENGTH = 1024;

/**
 * The SSH certificate authority engine of one mount. It follows Vault's
 * SSH secrets engine in CA mode: a user CA and a host CA, roles, and
 * signing and issuing certificates. Keyward adds a certificate inventory,
 * revocation with an OpenSSH KRL, phased CA rotation and an inventory of
 * plain (legacy) public keys. Everything is stored behind the barrier under
 * `<mount>/`. Methods throw a `KeywardError` on failure.
 */
export class SshService {
  readonly mount: string;
  readonly #store: SshStore;
  readonly #ca: CaAuthority;
  readonly #revocations: RevocationRegistry;
  readonly #legacyKeys: LegacyKeyInventory;
  readonly #clock: () => Date;
  readonly #logger: Logger;

  constructor(options: SshServiceOptions) {
    if (!/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/.test(options.mount)) {
      throw new KeywardError("invalid_field", `invalid mount path "${options.mount}"`, {
        field: "mount",
      });
    }
    this.mount = options.mount;
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#store = new SshStore(options.barrier, options.mount);
    this.#ca = new CaAuthority(this.#store, this.#clock, this.#logger, this.mount);
    this.#revocations = new RevocationRegistry(this.#store, this.#clock, this.#logger, this.mount);
    this.#legacyKeys = new LegacyKeyInventory(
      this.#store,
      this.#revocations,
      this.#clock,
      this.#logger,
      this.mount,
    );
  }

  #context(): SigningContext {
    return {
      store: this.#store,
      ca: this.#ca,
      revocations: this.#revocations,
      logger: this.#logger,
      mount: this.mount,
      now: this.#clock(),
    };
  }

  // Certificate authorities

  /** Creates the CA of `kind` by generating or importing a key; `already_exists` when it has one. */
  async configureCa(kind: CaKind, request: CaKeyRequest): Promise<CaInfo> {
    return this.#ca.configure(kind, request);
  }

  /** Returns the CA that signs certificates of `kind`; for `host`, the user CA while no host CA is configured. */
  async readCa(kind: CaKind): Promise<CaInfo> {
    return this.#ca.read(kind);
  }

  async deleteCa(kind: CaKind): Promise<void> {
    await this.#ca.delete(kind);
  }

  /** Returns every public key to trust for `kind`, one OpenSSH line each: a TrustedUserCAKeys file for `user`. */
  async trustedCaKeys(kind: CaKind): Promise<string> {
    return (await this.#ca.trustedKeys(kind)).map((key) => `${key}\n`).join("");
  }

  /**
   * Returns known_hosts lines: `@cert-authority <hostPattern> <key>` for every
   * trusted host CA key, and `@revoked * <key>` for every revoked plain key.
   * `hostPattern` is one pattern or a comma-separated list, as known_hosts
   * takes it.
   */
  async knownHosts(hostPattern = "*"): Promise<string> {
    const patterns = hostPattern.split(",");
    if (
      hostPattern.length > MAX_HOST_PATTERN_LENGTH ||
      !patterns.every((pattern) => HOST_PATTERN.test(pattern))
    ) {
      throw new KeywardError(
        "invalid_field",
        '"host_pattern" must be known_hosts host patterns separated by commas, without spaces, such as "*.example.com,10.0.0.*"',
        { field: "host_pattern" },
      );
    }
    const lines = (await this.#ca.trustedKeys("host")).map(
      (key) => `@cert-authority ${hostPattern} ${key}`,
    );
    const state = await this.#revocations.state();
    for (const entry of state.publicKeys) lines.push(`@revoked * ${entry.publicKey}`);
    return lines.map((line) => `${line}\n`).join("");
  }

  /** Rotation phase 1: adds a key that is published in the trust bundles but does not sign yet. */
  async prepareCaRotation(kind: CaKind, request: CaKeyRequest): Promise<CaInfo> {
    return this.#ca.prepare(kind, request);
  }

  /** Rotation phase 2: the new key signs; the old key stays trusted until it is retired. */
  async switchCa(kind: CaKind): Promise<CaInfo> {
    return this.#ca.switch(kind);
  }

  /** Undoes phase 1 or 2 of a rotation. After `retireCa` there is nothing to roll back. */
  async rollbackCa(kind: CaKind): Promise<CaInfo> {
    return this.#ca.rollback(kind);
  }

  /**
   * Rotation phase 3: removes the old key from the CA and the trust bundles
   * and revokes it in the KRL, so certificates it signed fail even where an
   * old trust bundle still lists it.
   */
  async retireCa(kind: CaKind): Promise<CaInfo> {
    const retired = await this.#ca.retire(kind);
    await this.#revocations.change(`retired CA key ${retired.id}`, (state) => {
      if (state.retiredCaKeys.some((entry) => entry.id === retired.id)) return false;
      state.retiredCaKeys.push({ id: retired.id, publicKey: retired.publicKey });
      return true;
    });
    return this.#ca.read(kind);
  }

  // Roles

  /** Creates or replaces role `name`; fields left out take their defaults, as in Vault. */
  async writeRole(name: string, write: RoleWrite): Promise<SshRole> {
    validateRoleName(name);
    const role = buildRole(write);
    await this.#store.withLock(`roles/${name}`, () => this.#store.put(`roles/${name}`, role));
    this.#logger.info({ mount: this.mount, role: name }, "SSH role written");
    return role;
  }

  async readRole(name: string): Promise<SshRole> {
    validateRoleName(name);
    const role = await this.#store.get<SshRole>(`roles/${name}`);
    if (!role) throw notFound(`role "${name}"`);
    return role;
  }

  async listRoles(): Promise<string[]> {
    return this.#store.list("roles");
  }

  async deleteRole(name: string): Promise<void> {
    validateRoleName(name);
    await this.#store.withLock(`roles/${name}`, () => this.#store.delete(`roles/${name}`));
    this.#logger.info({ mount: this.mount, role: name }, "SSH role deleted");
  }

  // Certificates

  /** Signs a client's public key under role `roleName`; `identity` fills the role's templates. */
  async sign(
    roleName: string,
    request: SignRequest,
    identity: RequesterIdentity = ANONYMOUS,
  ): Promise<SignResult> {
    validateRoleName(roleName);
    return signPublicKey(this.#context(), roleName, request, identity);
  }

  /** Generates a key pair and signs it; the private key is returned once and never stored. */
  async issue(
    roleName: string,
    request: IssueRequest,
    identity: RequesterIdentity = ANONYMOUS,
  ): Promise<IssueResult> {
    validateRoleName(roleName);
    return issueKeyPair(this.#context(), roleName, request, identity);
  }

  /** Reads an issued certificate from the inventory by serial (hex). */
  async readCertificate(serial: string): Promise<CertificateRecord & { revoked: boolean }> {
    const normalized = normalizeSerial(serial, "serial");
    const record = await this.#store.get<StoredCertificate>(certificatePath(normalized));
    if (!record) throw notFound(`certificate with serial ${normalized}`);
    return toCertificateInfo(record);
  }

  /** Lists the serials of inventoried certificates in ascending order. */
  async listCertificates(): Promise<string[]> {
    return this.#store.list("certs");
  }

  // Revocation

  /** Revokes by exactly one of serial, key ID or public key, and rebuilds the KRL. */
  async revoke(request: RevokeRequest): Promise<Outcome<RevokeResult>> {
    return revoke(this.#context(), request);
  }

  /** Returns the KRL in OpenSSH's binary format. */
  async krl(): Promise<Buffer> {
    return this.#revocations.krl();
  }

  // Legacy public keys

  async registerLegacyKey(
    name: string,
    publicKey: string,
    comment?: string,
  ): Promise<LegacyKeyInfo> {
    validateRoleName(name, "name");
    return this.#legacyKeys.register(name, publicKey, comment);
  }

  async readLegacyKey(name: string): Promise<LegacyKeyInfo> {
    validateRoleName(name, "name");
    return this.#legacyKeys.read(name);
  }

  async listLegacyKeys(): Promise<string[]> {
    return this.#legacyKeys.list();
  }

  async deleteLegacyKey(name: string): Promise<void> {
    validateRoleName(name, "name");
    await this.#legacyKeys.delete(name);
  }

  /** Returns an authorized_keys file of the registered keys that are not revoked. */
  async authorizedKeys(): Promise<string> {
    return this.#legacyKeys.authorizedKeys();
  }
}
