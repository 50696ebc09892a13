import { DEFAULT_DELETION_WINDOW_DAYS } from "../../config.ts";
import { KeywardError } from "../../errors.ts";
import type { OperationContext } from "./access.ts";
import { singleResult } from "./batch.ts";
import { TransitHsm } from "./hsm/access.ts";
import { KeyIndexState } from "./index-rebuild.ts";
import { countKeys, type KeyCount } from "./key-counts.ts";
import { describeKey } from "./key-info.ts";
import { type KeySearchQuery, type KeySearchResult, searchKeys } from "./key-search.ts";
import { deleteDueKeys, rotateDueKeys, type SweepSummary } from "./lifecycle.ts";
import { MountConfigStore, validateDeletionWindow } from "./mount-config.ts";
import {
  decryptItems,
  encryptItems,
  generateDataKeyFor,
  rewrapItems,
} from "./operations/encryption.ts";
import {
  type ImportKeyRequest,
  importNamedKey,
  importNamedKeyVersion,
  type WrappedKeyRequest,
} from "./operations/import.ts";
import {
  backupNamedKey,
  cancelKeyDeletion,
  configureNamedKey,
  createNamedKey,
  type ExportedKey,
  exportNamedKey,
  type RestoreRequest,
  restoreNamedKey,
  rotateNamedKey,
  scheduleKeyDeletion,
  setNamedKeyState,
  trimNamedKey,
} from "./operations/keys.ts";
import { hmacItems, signItems, verifyItems } from "./operations/signing.ts";
import {
  generateRandom,
  type HashRequest,
  hashInput,
  type RandomRequest,
} from "./operations/utility.ts";
import { KeyStore, validateKeyName } from "./store.ts";
import type {
  BatchOptions,
  BatchOutcome,
  ConfigureKeyRequest,
  CreateKeyRequest,
  DataKeyRequest,
  DataKeyResult,
  DecryptItem,
  DecryptResult,
  DeletionSchedule,
  EncryptItem,
  EncryptOptions,
  EncryptResult,
  HmacItem,
  HmacOptions,
  HmacResult,
  KeyInfo,
  Logger,
  Outcome,
  RewrapItem,
  SignatureOptions,
  SignItem,
  SignOptions,
  SignResult,
  TransitMountConfig,
  TransitServiceOptions,
  VerifyItem,
  VerifyResult,
} from "./types.ts";
import { WrappingKeyStore } from "./wrapping-key.ts";

const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/**
 * The transit secrets engine of one mount: named, versioned keys stored
 * behind the barrier and the cryptographic operations on them, with Vault's
 * transit semantics plus Keyward's lifecycle states and scheduled deletion.
 *
 * Methods named after a single operation throw a `KeywardError` when it
 * fails. Batch methods return one result per item and the HTTP status that
 * Vault would return.
 */
export class TransitService {
  readonly mount: string;
  readonly #store: KeyStore;
  readonly #indexes: KeyIndexState;
  readonly #config: MountConfigStore;
  readonly #wrappingKeys: WrappingKeyStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #hsm: TransitHsm | undefined;
  readonly #rotationListeners: ((names: readonly string[]) => void)[] = [];

  constructor(options: TransitServiceOptions) {
    if (!/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/.test(options.mount)) {
      throw new KeywardError("invalid_field", `invalid mount path "${options.mount}"`, {
        field: "mount",
      });
    }
    const deletionWindowDays = options.deletionWindowDays ?? DEFAULT_DELETION_WINDOW_DAYS;
    validateDeletionWindow(deletionWindowDays, "deletionWindowDays");
    this.mount = options.mount;
    this.#store = new KeyStore(options.barrier, options.mount);
    this.#config = new MountConfigStore(options.barrier, options.mount, {
      disableUpsert: false,
      deletionWindowDays,
    });
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#wrappingKeys = new WrappingKeyStore(
      options.barrier,
      options.mount,
      this.#clock,
      this.#logger,
    );
    this.#indexes = new KeyIndexState(options.barrier, options.mount, this.#logger);
    this.#hsm = options.hsm === undefined ? undefined : new TransitHsm(options.hsm, options.mount);
  }

  /**
   * The mount's key store, for the KMIP server, whose objects are managed
   * keys of its transit mount and which reads and changes them directly.
   */
  get keyStore(): KeyStore {
    return this.#store;
  }

  #context(): OperationContext {
    return {
      store: this.#store,
      logger: this.#logger,
      mount: this.mount,
      now: this.#clock(),
      ...(this.#hsm === undefined ? {} : { hsm: this.#hsm }),
    };
  }

  #log(fields: Record<string, unknown>, message: string): void {
    this.#logger.info({ mount: this.mount, ...fields }, message);
  }

  // Key management

  /**
   * Creates key `name`. When it exists, nothing changes and the outcome
   * carries a warning, as Vault's create does.
   */
  async createKey(name: string, request: CreateKeyRequest = {}): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    return createNamedKey(this.#context(), name, request);
  }

  async readKey(name: string): Promise<KeyInfo> {
    validateKeyName(name);
    return describeKey(await this.#store.get(name), this.#clock());
  }

  /**
   * Lists every key name in ascending order; empty when there are none.
   * The list is read from storage in pages but returned whole, as Vault's
   * list is; `searchKeys` returns one page.
   */
  async listKeys(): Promise<string[]> {
    return this.#store.list();
  }

  /**
   * Returns one page of key names: after a cursor, by name prefix, or by
   * the time of their scheduled deletion or next automatic rotation (see
   * `KeySearchQuery`). Throws `invalid_field` naming the parameter at
   * fault, and `index_rebuilding` for a time window while the mount's
   * indexes are still being rebuilt after an upgrade.
   */
  async searchKeys(query: KeySearchQuery): Promise<KeySearchResult> {
    return searchKeys(this.#store, this.#indexes, query);
  }

  /**
   * Counts the keys by type and state, reading every key once (see
   * `countKeys`); slow with many keys, so metrics run it in the background.
   */
  async countKeys(): Promise<KeyCount[]> {
    return countKeys(this.#store, this.#clock());
  }

  /**
   * Resolves once the mount's indexes cover every key, rebuilding them first
   * when a Keyward version without indexes wrote keys. The sweeps call it,
   * and the scheduler runs them at every unseal.
   */
  async prepareIndexes(): Promise<void> {
    await this.#indexes.ensureComplete();
  }

  /** The number of keys in the cache and the total length of their JSON. */
  get keyCacheUsage(): { entries: number; chars: number } {
    return this.#store.cacheUsage;
  }

  /**
   * Changes a key's tunable settings. Turning `deletion_allowed` off also
   * cancels a scheduled deletion.
   */
  async configureKey(name: string, request: ConfigureKeyRequest): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    return configureNamedKey(this.#context(), name, request);
  }

  /** Adds a new key version; new encryptions and signatures use it. */
  async rotateKey(name: string): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    const outcome = await rotateNamedKey(this.#context(), name);
    this.#rotated([name]);
    return outcome;
  }

  /**
   * Registers a listener of the keys that `rotateKey` and `rotateDueKeys`
   * rotated, called once each new version is stored. Keyward passes them
   * on to the KMIP server, which shows each version of its keys as an
   * object. A listener must not throw.
   */
  onRotation(listener: (names: readonly string[]) => void): void {
    this.#rotationListeners.push(listener);
  }

  #rotated(names: readonly string[]): void {
    for (const listener of this.#rotationListeners) {
      try {
        listener(names);
      } catch (error) {
        this.#logger.error({ mount: this.mount, err: error }, "key rotation listener failed");
      }
    }
  }

  /** Moves a key to another lifecycle state; an illegal transition throws `invalid_state`. */
  async setKeyState(name: string, state: string): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    return setNamedKeyState(this.#context(), name, state);
  }

  /** Permanently removes the versions below `minAvailableVersion`. */
  async trimKey(name: string, minAvailableVersion: number): Promise<void> {
    validateKeyName(name);
    await trimNamedKey(this.#context(), name, minAvailableVersion);
  }

  /**
   * Schedules the deletion of a key that allows deletion. It runs after
   * `deletionWindowDays` (7 to 30), or after the mount's default window.
   * Until then the key rejects every operation and the deletion can be
   * cancelled. A key already scheduled keeps its date.
   */
  async scheduleDeletion(
    name: string,
    options: { deletionWindowDays?: number } = {},
  ): Promise<Outcome<DeletionSchedule>> {
    validateKeyName(name);
    if (options.deletionWindowDays !== undefined) {
      validateDeletionWindow(options.deletionWindowDays, "deletion_window");
    }
    const days = options.deletionWindowDays ?? (await this.#config.read()).deletionWindowDays;
    return scheduleKeyDeletion(this.#context(), name, days);
  }

  /** Cancels a scheduled deletion; the key becomes usable again. */
  async cancelDeletion(name: string): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    return cancelKeyDeletion(this.#context(), name);
  }

  /**
   * Returns key material of kind `kind` (`encryption-key`, `signing-key`,
   * `hmac-key` or `public-key`). `version` is a version number, `latest`, or
   * absent for all versions.
   */
  async exportKey(name: string, kind: string, version?: string): Promise<Outcome<ExportedKey>> {
    validateKeyName(name);
    return exportNamedKey(this.#context(), name, kind, version);
  }

  /** Returns a plaintext backup of a key that allows plaintext backup. */
  async backupKey(name: string): Promise<string> {
    validateKeyName(name);
    return backupNamedKey(this.#context(), name);
  }

  /** Restores a backup; an existing key is replaced only with `force`. */
  async restoreKey(request: RestoreRequest): Promise<void> {
    await restoreNamedKey(this.#context(), request);
  }

  /**
   * Marks the mount as removed (unmounted, or sealed): a wrapping key that
   * is still being generated is then not stored.
   */
  close(): void {
    this.#wrappingKeys.close();
  }

  // Key import

  /**
   * Returns the public half (SPKI PEM) of the mount's RSA-4096 wrapping
   * key, which import requests wrap their ephemeral AES key with. The key
   * is generated on the first call, in the background.
   */
  async readWrappingKey(): Promise<{ publicKey: string }> {
    return { publicKey: (await this.#wrappingKeys.get()).publicKeyPem };
  }

  /** Imports a wrapped key as the new key `name`; throws `already_exists` when it exists. */
  async importKey(name: string, request: ImportKeyRequest): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    return importNamedKey(this.#context(), this.#wrappingKeys, name, request);
  }

  /** Imports a wrapped key as the next version of the imported key `name`. */
  async importKeyVersion(name: string, request: WrappedKeyRequest): Promise<Outcome<KeyInfo>> {
    validateKeyName(name);
    const outcome = await importNamedKeyVersion(this.#context(), this.#wrappingKeys, name, request);
    this.#rotated([name]);
    return outcome;
  }

  async readMountConfig(): Promise<TransitMountConfig> {
    return this.#config.read();
  }

  async writeMountConfig(changes: Partial<TransitMountConfig>): Promise<TransitMountConfig> {
    const config = await this.#config.write(changes);
    this.#log({ config }, "transit mount configuration changed");
    return config;
  }

  // Cryptographic operations

  async encrypt(
    name: string,
    item: EncryptItem,
    options: EncryptOptions = {},
  ): Promise<Outcome<EncryptResult>> {
    validateKeyName(name);
    const { disableUpsert } = await this.#config.read();
    const outcome = await encryptItems(
      this.#context(),
      name,
      [item],
      { ...options, disableUpsert },
      false,
    );
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async encryptBatch(
    name: string,
    items: EncryptItem[],
    options: EncryptOptions = {},
  ): Promise<BatchOutcome<EncryptResult>> {
    validateKeyName(name);
    const { disableUpsert } = await this.#config.read();
    return encryptItems(this.#context(), name, items, { ...options, disableUpsert }, true);
  }

  async decrypt(name: string, item: DecryptItem): Promise<Outcome<DecryptResult>> {
    validateKeyName(name);
    const outcome = await decryptItems(this.#context(), name, [item], {}, false);
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async decryptBatch(
    name: string,
    items: DecryptItem[],
    options: BatchOptions = {},
  ): Promise<BatchOutcome<DecryptResult>> {
    validateKeyName(name);
    return decryptItems(this.#context(), name, items, options, true);
  }

  async rewrap(name: string, item: RewrapItem): Promise<Outcome<EncryptResult>> {
    validateKeyName(name);
    const outcome = await rewrapItems(this.#context(), name, [item], {}, false);
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async rewrapBatch(
    name: string,
    items: RewrapItem[],
    options: BatchOptions = {},
  ): Promise<BatchOutcome<EncryptResult>> {
    validateKeyName(name);
    return rewrapItems(this.#context(), name, items, options, true);
  }

  async generateDataKey(name: string, request: DataKeyRequest): Promise<Outcome<DataKeyResult>> {
    validateKeyName(name);
    return generateDataKeyFor(this.#context(), name, request);
  }

  async sign(
    name: string,
    item: SignItem,
    options: SignOptions = {},
  ): Promise<Outcome<SignResult>> {
    validateKeyName(name);
    const outcome = await signItems(this.#context(), name, [item], options, false);
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async signBatch(
    name: string,
    items: SignItem[],
    options: SignOptions = {},
  ): Promise<BatchOutcome<SignResult>> {
    validateKeyName(name);
    return signItems(this.#context(), name, items, options, true);
  }

  /** Verifies a signature, or an HMAC when the item has `hmac` instead of `signature`. */
  async verify(
    name: string,
    item: VerifyItem,
    options: SignatureOptions = {},
  ): Promise<Outcome<VerifyResult>> {
    validateKeyName(name);
    const outcome = await verifyItems(this.#context(), name, [item], options, false);
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async verifyBatch(
    name: string,
    items: VerifyItem[],
    options: SignatureOptions = {},
  ): Promise<BatchOutcome<VerifyResult>> {
    validateKeyName(name);
    return verifyItems(this.#context(), name, items, options, true);
  }

  async hmac(
    name: string,
    item: HmacItem,
    options: HmacOptions = {},
  ): Promise<Outcome<HmacResult>> {
    validateKeyName(name);
    const outcome = await hmacItems(this.#context(), name, [item], options, false);
    return { value: singleResult(outcome.results), warnings: outcome.warnings };
  }

  async hmacBatch(
    name: string,
    items: HmacItem[],
    options: HmacOptions = {},
  ): Promise<BatchOutcome<HmacResult>> {
    validateKeyName(name);
    return hmacItems(this.#context(), name, items, options, true);
  }

  /** Returns random bytes, base64- or hex-encoded. Needs no key and no storage. */
  randomBytes(request: RandomRequest = {}): string {
    return generateRandom(request);
  }

  /** Returns the hash of base64 input, hex- or base64-encoded. Needs no key and no storage. */
  hash(request: HashRequest): string {
    return hashInput(request);
  }

  // Jobs

  #sweepContext() {
    return {
      store: this.#store,
      indexes: this.#indexes,
      logger: this.#logger,
      mount: this.mount,
      onRotated: (names: readonly string[]) => this.#rotated(names),
      ...(this.#hsm === undefined ? {} : { hsm: this.#hsm }),
    };
  }

  /**
   * Rotates every key whose automatic rotation is due at `now`, found
   * through the rotation index, in batches that let requests run between
   * them. Returns how many keys changed and the first names.
   */
  async rotateDueKeys(now: Date = this.#clock()): Promise<SweepSummary> {
    return rotateDueKeys(this.#sweepContext(), now);
  }

  /** Deletes every key whose scheduled deletion is due at `now`, as `rotateDueKeys` does. */
  async deleteDueKeys(now: Date = this.#clock()): Promise<SweepSummary> {
    return deleteDueKeys(this.#sweepContext(), now);
  }
}
