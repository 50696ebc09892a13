import { KeywardError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { KEYRING_KEY } from "./keyring.ts";
import type { KeyringStore } from "./keyring-store.ts";
import { generateRecoveryKey, recoveryKeyMatches, recoveryKeyVerifier } from "./recovery-key.ts";
import { ROOT_KEY_BYTES, splitRootKey } from "./root-key.ts";
import {
  createPkcs11SealConfig,
  encodeSealConfig,
  RECOVERY_SHARE_FIELDS,
  readSealConfig,
  SEAL_CONFIG_KEY,
  SECRET_SHARE_FIELDS,
  type SealConfig,
  validateShareCounts,
} from "./seal-config.ts";
import {
  type CreatedSeal,
  type NewShares,
  SealManagerBase,
  type SealManagerOptions,
} from "./seal-manager-base.ts";
import type { InitRequest, SealManager, SealStatus } from "./types.ts";
import {
  decodeWrappedRootKey,
  encodeWrappedRootKey,
  type RootKeyWrapper,
  WRAPPED_ROOT_KEY_KEY,
  wrappedRootKeyAad,
} from "./wrapped-root-key.ts";

/**
 * Creates the PKCS#11 seal manager for `storage`, whose root key is wrapped
 * by `wrapper`'s HSM key. It starts sealed; `autoUnseal()` opens it.
 */
export function createPkcs11SealManager(
  storage: Storage,
  wrapper: RootKeyWrapper,
  options: SealManagerOptions = {},
): SealManager {
  return new Pkcs11SealManager(storage, wrapper, options);
}

/**
 * The PKCS#11 seal (auto-unseal). At initialisation the root key is
 * encrypted with an AES-256 key that never leaves the HSM and stored at
 * `core/hsm-root-key`. At start the server has the HSM unwrap it and
 * unseals itself.
 *
 * The shares it issues are of a separate random recovery key, of which only
 * a verifier is stored. They cannot unseal a server without the HSM. A
 * quorum of them authorises generating a root token and a rekey, which
 * replaces the recovery key but not the root key. It also unseals a server
 * that an operator sealed, with the root key that the HSM unwraps.
 */
class Pkcs11SealManager extends SealManagerBase {
  readonly type = "pkcs11" as const;
  protected readonly shareNames = { shares: "recovery key", secret: "recovery key" };
  readonly #wrapper: RootKeyWrapper;
  /** True once this manager has unsealed; from then on only a start or recovery shares unseal it. */
  #unsealedBefore = false;

  constructor(storage: Storage, wrapper: RootKeyWrapper, options: SealManagerOptions) {
    super(storage, options);
    this.#wrapper = wrapper;
    this.onChange((sealed) => {
      if (!sealed) this.#unsealedBefore = true;
    });
  }

  /**
   * Re-reads what another node changed, as the base class does. A node that
   * has not unsealed since it started, because the storage was not
   * initialised then, unseals once another node has initialised it. A node
   * that an operator sealed stays sealed.
   */
  override async refresh(): Promise<void> {
    await super.refresh();
    if (this.#unsealedBefore || !this.barrier.sealed) return;
    if (!(await this.status()).initialized) return;
    await this.autoUnseal();
  }

  autoUnseal(): Promise<SealStatus> {
    return this.mutex.run(async () => {
      const config = await this.loadConfig();
      if (config === undefined || !this.barrier.sealed) return this.status();
      this.clearUnsealProgress();
      const rootKey = await this.#unwrapRootKey();
      await this.openBarrier(rootKey, (cause) => this.keyringNotDecrypted(cause));
      this.logger?.info(
        { keyLabel: this.#wrapper.keyLabel, hsm: this.#wrapper.location },
        "unsealed with the root key unwrapped by the HSM",
      );
      return this.status();
    });
  }

  protected validateInitRequest(request: InitRequest): void {
    validateShareCounts(request.shares, request.threshold, RECOVERY_SHARE_FIELDS);
  }

  protected async createSeal(rootKey: Buffer, request: InitRequest): Promise<CreatedSeal> {
    const recoveryKey = generateRecoveryKey();
    try {
      const config = createPkcs11SealConfig(
        request.shares,
        request.threshold,
        recoveryKeyVerifier(recoveryKey),
      );
      const result = await splitRootKey(recoveryKey, config);
      const wrapped = await this.#wrapper.wrap(rootKey, wrappedRootKeyAad());
      this.logger?.info(
        { keyLabel: this.#wrapper.keyLabel, hsm: this.#wrapper.location, created: wrapped.created },
        "wrapped the new root key with the HSM key",
      );
      const record = encodeWrappedRootKey({
        keyLabel: this.#wrapper.keyLabel,
        iv: wrapped.iv,
        ciphertext: wrapped.ciphertext,
      });
      return { config, result, records: [[WRAPPED_ROOT_KEY_KEY, record]] };
    } finally {
      recoveryKey.fill(0);
    }
  }

  /** Checks the rebuilt recovery key, then has the HSM unwrap the root key. */
  protected async rootKeyFromShares(secret: Buffer, config: SealConfig): Promise<Buffer> {
    const matches = this.secretMatches(secret, config);
    secret.fill(0);
    if (!matches) {
      throw this.wrongShares(undefined, "the unseal attempt was reset; submit the shares again");
    }
    return this.#unwrapRootKey();
  }

  protected keyringNotDecrypted(cause: unknown): unknown {
    return new KeywardError(
      "storage_failure",
      `the root key unwrapped by the HSM does not decrypt the keyring at ${KEYRING_KEY}: the storage data is corrupted or mixes two installations`,
      { cause },
    );
  }

  protected secretMatches(secret: Buffer, config: SealConfig): boolean {
    const verifier = config.recoveryKeyVerifier;
    return verifier !== undefined && recoveryKeyMatches(secret, verifier);
  }

  /** Creates a new recovery key split into the new shares. The root key and its HSM wrapping stay as they are. */
  protected async createShares(shares: number, threshold: number): Promise<NewShares> {
    const recoveryKey = generateRecoveryKey();
    try {
      const config = createPkcs11SealConfig(
        shares,
        threshold,
        recoveryKeyVerifier(recoveryKey),
        SECRET_SHARE_FIELDS,
      );
      return { config, result: await splitRootKey(recoveryKey, config), secret: recoveryKey };
    } catch (error) {
      recoveryKey.fill(0);
      throw error;
    }
  }

  /**
   * Stores the new configuration, which carries the new recovery key's
   * verifier. Throws `invalid_state` when the stored recovery key is no
   * longer the one whose shares authorised the rekey, because another node
   * rekeyed meanwhile.
   */
  protected async commitShares(
    _store: KeyringStore,
    created: NewShares,
    replaced: SealConfig,
  ): Promise<void> {
    await this.storage.transaction(async (tx) => {
      const stored = await readSealConfig(tx);
      const expected = replaced.recoveryKeyVerifier;
      const current = stored?.recoveryKeyVerifier;
      if (expected === undefined || current === undefined || !current.equals(expected)) {
        throw new KeywardError(
          "invalid_state",
          "the recovery key was replaced on another node during this rekey: cancel the rekey and start again with the current recovery shares",
        );
      }
      await tx.put(SEAL_CONFIG_KEY, encodeSealConfig(created.config));
    });
  }

  /** Reads the wrapped root key and has the HSM decrypt it. */
  async #unwrapRootKey(): Promise<Buffer> {
    const stored = await this.storage.get(WRAPPED_ROOT_KEY_KEY);
    if (stored === undefined) {
      throw new KeywardError(
        "storage_failure",
        `the wrapped root key at ${WRAPPED_ROOT_KEY_KEY} is missing although the seal configuration exists: the storage data is corrupted`,
      );
    }
    const record = decodeWrappedRootKey(stored);
    const wrapper = this.#wrapper;
    if (record.keyLabel !== wrapper.keyLabel) {
      throw new KeywardError(
        "seal_mismatch",
        `the root key is wrapped by the HSM key labelled "${record.keyLabel}", but the seal is configured with the key label "${wrapper.keyLabel}": set seal_pkcs11_key_label to "${record.keyLabel}"`,
      );
    }
    let rootKey: Buffer;
    try {
      rootKey = await wrapper.unwrap(record.iv, record.ciphertext, wrappedRootKeyAad());
    } catch (error) {
      if (!(error instanceof KeywardError && error.code === "decryption_failed")) throw error;
      throw new KeywardError(
        "seal_mismatch",
        `the AES key labelled "${wrapper.keyLabel}" in ${wrapper.location} cannot decrypt the stored root key: the storage was initialised with another HSM key or token`,
        { cause: error },
      );
    }
    if (rootKey.length !== ROOT_KEY_BYTES) {
      rootKey.fill(0);
      throw new KeywardError(
        "storage_failure",
        `the root key unwrapped from ${WRAPPED_ROOT_KEY_KEY} has ${rootKey.length} bytes instead of ${ROOT_KEY_BYTES}: the storage data is corrupted`,
      );
    }
    return rootKey;
  }
}
