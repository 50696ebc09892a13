import { KeywardError, notFound } from "../../errors.ts";
import { fingerprintSha256, formatPublicKeyLine, parsePublicKeyLine } from "./public-keys.ts";
import type { RevocationRegistry } from "./revocation.ts";
import type { SshStore } from "./store.ts";
import type { LegacyKeyInfo, LegacyKeyRecord, Logger } from "./types.ts";

/** RSA keys shorter than this are flagged weak, in bits (NIST SP 800-131A disallows RSA under 2048 bits for signatures). */
const WEAK_RSA_BITS = 2048;

/** Maximum length of a legacy key's comment, in characters. */
const MAX_COMMENT_LENGTH = 1024;

function keyPath(name: string): string {
  return `legacy_keys/${name}`;
}

/** Returns why a key is weak, or an empty string. */
export function weakness(algorithm: string, bits: number): string {
  if (algorithm === "ssh-dss")
    return "DSA keys are limited to 1024 bits and SHA-1; OpenSSH disables them by default";
  if (algorithm === "ssh-rsa" && bits < WEAK_RSA_BITS) {
    return `RSA key of ${bits} bits; at least ${WEAK_RSA_BITS} are needed`;
  }
  return "";
}

/**
 * The inventory of plain public keys (keys that are not certificates, as in
 * hand-kept authorized_keys files): registered by name, fingerprinted,
 * flagged when weak, and rendered as authorized_keys lines.
 */
export class LegacyKeyInventory {
  readonly #store: SshStore;
  readonly #revocations: RevocationRegistry;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #mount: string;

  constructor(
    store: SshStore,
    revocations: RevocationRegistry,
    clock: () => Date,
    logger: Logger,
    mount: string,
  ) {
    this.#store = store;
    this.#revocations = revocations;
    this.#clock = clock;
    this.#logger = logger;
    this.#mount = mount;
  }

  /** Registers a key under `name`, replacing a key registered under that name before. */
  async register(name: string, publicKey: string, comment?: string): Promise<LegacyKeyInfo> {
    const key = parsePublicKeyLine(publicKey, "public_key", { allowDsa: true });
    const text = comment ?? key.comment;
    if (text.length > MAX_COMMENT_LENGTH || /[\r\n]/.test(text)) {
      throw new KeywardError(
        "invalid_field",
        `"comment" must be one line of at most ${MAX_COMMENT_LENGTH} characters`,
        { field: "comment" },
      );
    }
    const record: LegacyKeyRecord = {
      name,
      publicKey: formatPublicKeyLine(key.algorithm, key.blob),
      algorithm: key.algorithm,
      bits: key.bits,
      fingerprint: fingerprintSha256(key.blob),
      comment: text,
      weakReason: weakness(key.algorithm, key.bits),
      registeredAt: this.#clock().toISOString(),
    };
    await this.#store.withLock(keyPath(name), () => this.#store.put(keyPath(name), record));
    if (record.weakReason !== "") {
      this.#logger.warn(
        { mount: this.#mount, name, fingerprint: record.fingerprint, reason: record.weakReason },
        "weak SSH public key registered",
      );
    }
    return this.#info(record, await this.#revokedFingerprints());
  }

  async read(name: string): Promise<LegacyKeyInfo> {
    const record = await this.#store.get<LegacyKeyRecord>(keyPath(name));
    if (!record) throw notFound(`legacy key "${name}"`);
    return this.#info(record, await this.#revokedFingerprints());
  }

  async list(): Promise<string[]> {
    return this.#store.list("legacy_keys");
  }

  async delete(name: string): Promise<void> {
    await this.#store.withLock(keyPath(name), () => this.#store.delete(keyPath(name)));
  }

  /**
   * Returns an authorized_keys file with every registered key that is not
   * revoked, one `type base64 comment` line each, sorted by name. Weak keys
   * stay in until they are revoked or deleted; read them to see the flag.
   */
  async authorizedKeys(): Promise<string> {
    const revoked = await this.#revokedFingerprints();
    const lines: string[] = [];
    for (const name of await this.list()) {
      const record = await this.#store.get<LegacyKeyRecord>(keyPath(name));
      if (!record || revoked.has(record.fingerprint)) continue;
      const comment = record.comment === "" ? "" : ` ${record.comment}`;
      lines.push(`${record.publicKey}${comment}`);
    }
    return lines.map((line) => `${line}\n`).join("");
  }

  async #revokedFingerprints(): Promise<Set<string>> {
    const state = await this.#revocations.state();
    return new Set(state.publicKeys.map((entry) => entry.fingerprint));
  }

  #info(record: LegacyKeyRecord, revoked: Set<string>): LegacyKeyInfo {
    return { ...record, weak: record.weakReason !== "", revoked: revoked.has(record.fingerprint) };
  }
}
