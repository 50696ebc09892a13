import type { Logger } from "pino";
import { invalidField, isKeywardError, KeywardError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { Mutex } from "../util/mutex.ts";
import { AesGcmBarrier } from "./barrier.ts";
import { decryptKeyring, encryptKeyring, KEYRING_KEY, Keyring } from "./keyring.ts";
import { KeyringStore } from "./keyring-store.ts";
import { type NewShares, RekeyAttempt, type RekeyVerification } from "./rekey-attempt.ts";
import { decodeRootKeyShare, generateRootKey, rebuildRootKey } from "./root-key.ts";
import {
  encodeSealConfig,
  readSealConfig,
  SEAL_CONFIG_KEY,
  type SealConfig,
  type SealType,
  validateShareCounts,
} from "./seal-config.ts";
import { ShareCollector } from "./share-collector.ts";
import type {
  Barrier,
  InitRequest,
  InitResult,
  KeyStatus,
  RekeyRequest,
  RekeyStatus,
  RekeyVerificationStatus,
  SealManager,
  SealStatus,
} from "./types.ts";

export interface SealManagerOptions {
  /** The source of install times for barrier keys; tests fix it. */
  clock?: () => Date;
  /** Receives errors the manager handles without throwing, such as a failed count write at seal. */
  logger?: Logger;
}

type ChangeListener = (sealed: boolean) => void | Promise<void>;

/** The configuration, shares and records a seal type creates at initialisation; `SealManagerBase.init` stores them in one transaction. */
export interface CreatedSeal {
  config: SealConfig;
  /** The shares to hand out. */
  result: InitResult;
  /** Records to store besides the seal configuration and the keyring, such as a wrapped root key. */
  records: Array<[key: string, value: Uint8Array]>;
}

export type { NewShares } from "./rekey-attempt.ts";

export function notInitialized(): KeywardError {
  return new KeywardError("not_initialized", "the server is not initialised: initialise it first");
}

function alreadyInitialized(): KeywardError {
  return new KeywardError("already_initialized", "the server is already initialised");
}

const SEAL_DESCRIPTIONS: Record<SealType, string> = {
  shamir: "a Shamir seal (unseal key shares)",
  pkcs11: "a PKCS#11 seal (a root key wrapped by an HSM key)",
};

const SEAL_MISMATCH_ADVICE: Record<SealType, string> = {
  shamir:
    "remove the seal_pkcs11_* settings to start it with its unseal key shares; Keyward does not migrate between seal types",
  pkcs11:
    "configure the PKCS#11 seal (seal_pkcs11_library, seal_pkcs11_token_label and the PIN) to start it",
};

function sealMismatch(stored: SealType, configured: SealType): KeywardError {
  return new KeywardError(
    "seal_mismatch",
    `the storage was initialised with ${SEAL_DESCRIPTIONS[stored]}, but this server runs ${SEAL_DESCRIPTIONS[configured]}: ${SEAL_MISMATCH_ADVICE[stored]}`,
  );
}

/**
 * The state machine every seal type shares: seal status, collecting
 * shares for unseal and rekey, opening and closing the barrier with a root
 * key, rotation, listeners, and following changes made by other nodes.
 * A subclass decides what the shares are of and where the root key comes
 * from.
 *
 * State changes (init, unseal, seal, rotate, rekey) run one at a time under
 * a mutex. Change listeners run inside that lock, so a listener must not
 * call a state-changing method of this manager: it would wait forever.
 */
export abstract class SealManagerBase implements SealManager {
  abstract readonly type: SealType;
  /** Names for messages: the key the shares are of ("unseal key", "recovery key") and the secret they rebuild ("root key", "recovery key"). */
  protected abstract readonly shareNames: { shares: string; secret: string };

  protected readonly storage: Storage;
  protected readonly clock: () => Date;
  protected readonly logger: Logger | undefined;
  protected readonly mutex = new Mutex();
  readonly #barrier: AesGcmBarrier;
  readonly #listeners: ChangeListener[] = [];
  /** The seal configuration, cached once read; it changes only by init and rekey. */
  #config: SealConfig | undefined;
  #unseal: ShareCollector | undefined;
  #rekey: RekeyAttempt | undefined;

  constructor(storage: Storage, options: SealManagerOptions) {
    this.storage = storage;
    this.clock = options.clock ?? (() => new Date());
    this.logger = options.logger;
    this.#barrier = new AesGcmBarrier(storage);
  }

  /** Checks the counts of an init request; throws `invalid_field` naming the request's fields. */
  protected abstract validateInitRequest(request: InitRequest): void;

  /** Creates the shares and the seal's records for a new root key; stores nothing itself. */
  protected abstract createSeal(rootKey: Buffer, request: InitRequest): Promise<CreatedSeal>;

  /**
   * Returns the root key to unseal with, given the secret that a full set
   * of shares rebuilt. Takes ownership of `secret` and zeroes it. Throws the
   * result of `wrongShares` when the secret is not the right one.
   */
  protected abstract rootKeyFromShares(secret: Buffer, config: SealConfig): Promise<Buffer>;

  /** Returns the error for a root key that does not decrypt the stored keyring. */
  protected abstract keyringNotDecrypted(cause: unknown): unknown;

  /** True when `secret`, rebuilt from shares, is the current one. Does not zero it. */
  protected abstract secretMatches(
    secret: Buffer,
    config: SealConfig,
    store: KeyringStore,
  ): boolean;

  /** Creates the new secret of a rekey, split into `shares` shares with `threshold`; stores nothing. */
  protected abstract createShares(shares: number, threshold: number): Promise<NewShares>;

  /**
   * Stores `created` so that its shares replace those of `replaced`, the
   * configuration whose shares authorised the rekey. Does not take
   * ownership of `created.secret`: a failed commit can be retried.
   */
  protected abstract commitShares(
    store: KeyringStore,
    created: NewShares,
    replaced: SealConfig,
  ): Promise<void>;

  get barrier(): Barrier {
    return this.#barrier;
  }

  async status(): Promise<SealStatus> {
    const config = await this.loadConfig();
    return {
      initialized: config !== undefined,
      sealed: this.#barrier.sealed,
      threshold: config?.threshold ?? 0,
      shares: config?.shares ?? 0,
      progress: this.#unseal?.progress ?? 0,
      nonce: this.#unseal?.nonce ?? "",
      storageType: this.storage.kind,
    };
  }

  /**
   * Initialises the storage: makes the root key and the shares, and stores
   * the seal configuration and the keyring. With `whileOpen`, the barrier is
   * then opened with the new root key, `whileOpen` runs (to write the first
   * records, such as the root token), and the barrier is closed again. All
   * of it runs under the mutex, so no unseal request can take part. When opening or
   * `whileOpen` fails, the stored records are deleted again and the error is
   * thrown: the shares were never returned, so an installation stored as
   * initialised could never be unsealed.
   */
  init(request: InitRequest, whileOpen?: () => Promise<void>): Promise<InitResult> {
    return this.mutex.run(async () => {
      this.validateInitRequest(request);
      if ((await this.loadConfig()) !== undefined) throw alreadyInitialized();

      const rootKey = generateRootKey();
      const keyring = Keyring.create(this.clock());
      let stored: string[] = [];
      try {
        // Create the shares before storing anything, because an installation
        // stored as initialised with no shares handed out could never be unsealed.
        const created = await this.createSeal(rootKey, request);
        const record = encryptKeyring(keyring, rootKey, () => 0);
        await this.storage.transaction(async (tx) => {
          if ((await tx.get(SEAL_CONFIG_KEY)) !== undefined) throw alreadyInitialized();
          await tx.put(SEAL_CONFIG_KEY, encodeSealConfig(created.config));
          for (const [key, value] of created.records) await tx.put(key, value);
          await tx.put(KEYRING_KEY, record);
        });
        stored = [SEAL_CONFIG_KEY, ...created.records.map(([key]) => key), KEYRING_KEY];
        this.#config = created.config;
        if (whileOpen !== undefined) {
          this.clearUnsealProgress();
          // openBarrier takes ownership of the key it gets.
          await this.openBarrier(Buffer.from(rootKey), (cause) => cause);
          await whileOpen();
          await this.#closeBarrier();
        }
        return created.result;
      } catch (error) {
        if (stored.length > 0) await this.#undoInit(stored);
        throw error;
      } finally {
        rootKey.fill(0);
        keyring.destroy();
      }
    });
  }

  /**
   * Closes the barrier and deletes the records an `init` stored, so the
   * storage is uninitialised again. Failures are logged: the caller is
   * already reporting the error that led here.
   */
  async #undoInit(stored: readonly string[]): Promise<void> {
    try {
      await this.#closeBarrier();
    } catch (error) {
      this.logger?.warn({ err: error }, "failed to close the barrier after a failed init");
    }
    try {
      await this.storage.transaction(async (tx) => {
        for (const key of stored) await tx.delete(key);
      });
      this.#config = undefined;
    } catch (error) {
      this.logger?.error(
        { err: error },
        "failed to delete the seal records of a failed init; the storage stays initialised without shares",
      );
    }
  }

  submitUnsealShare(share: string): Promise<SealStatus> {
    return this.mutex.run(async () => {
      const config = await this.requireConfig();
      if (!this.#barrier.sealed) return this.status();

      const decoded = decodeRootKeyShare(share, config);
      this.#unseal ??= new ShareCollector();
      this.#unseal.add(decoded);
      if (this.#unseal.progress < config.threshold) return this.status();

      // Enough shares: the attempt ends here whether or not the shares are right.
      const shares = this.#unseal.take();
      this.#unseal = undefined;
      const next = "the unseal attempt was reset; submit the shares again";
      const secret = await rebuildRootKey(shares).catch((error: unknown) => {
        throw this.wrongShares(error, next);
      });
      const rootKey = await this.rootKeyFromShares(secret, config);
      await this.openBarrier(rootKey, (cause) => this.keyringNotDecrypted(cause));
      return this.status();
    });
  }

  resetUnseal(): Promise<SealStatus> {
    return this.mutex.run(async () => {
      this.clearUnsealProgress();
      return this.status();
    });
  }

  seal(): Promise<void> {
    return this.mutex.run(async () => {
      this.clearUnsealProgress();
      this.#clearRekey();
      await this.#closeBarrier();
    });
  }

  /** Closes the barrier when it is open, after notifying the listeners. Call it under the mutex. */
  async #closeBarrier(): Promise<void> {
    if (this.#barrier.sealed) return;
    // Listeners run first, while the barrier is still open, and sealing
    // goes ahead even when one fails.
    const listenerError = await this.#notify(true);
    const store = this.#barrier.close();
    const writeError = await store?.close();
    if (writeError !== undefined) {
      this.logger?.warn(
        { err: writeError },
        "failed to store barrier encryption counts at seal; the stored counts stay at their last, higher reservation",
      );
    }
    if (listenerError !== undefined) throw listenerError;
  }

  async refresh(): Promise<void> {
    await this.mutex.run(async () => {
      this.#config = undefined;
    });
    if (this.#barrier.sealed) return;
    try {
      await this.#barrier.openStore().reload();
    } catch (error) {
      // Sealed meanwhile, or by the reload itself when the root key changed.
      if (!isKeywardError(error) || error.code !== "sealed") throw error;
    }
  }

  /** Seals this node once the keyring turns out to be encrypted under another node's new root key. */
  #sealForForeignRootKey(): void {
    this.logger?.error(
      {},
      "the stored keyring is encrypted under a root key this node does not hold, because another node rekeyed: sealing; unseal with the new key shares",
    );
    setImmediate(() => {
      this.seal().catch((error: unknown) => {
        this.logger?.error({ err: error }, "failed to seal after the root key changed");
      });
    });
  }

  rotate(): Promise<KeyStatus> {
    return this.mutex.run(async () => {
      await this.#barrier.openStore().rotate(this.clock());
      return this.keyStatus();
    });
  }

  async keyStatus(): Promise<KeyStatus> {
    const active = this.#barrier.openStore().keyring.active;
    return { term: active.term, installTime: active.installTime, encryptions: active.encryptions };
  }

  rekeyInit(request: RekeyRequest): Promise<RekeyStatus> {
    return this.mutex.run(async () => {
      this.#barrier.openStore();
      validateShareCounts(request.shares, request.threshold);
      if (this.#rekey !== undefined) {
        throw new KeywardError(
          "invalid_state",
          "a rekey is already in progress: finish or cancel it before starting another",
        );
      }
      this.#rekey = new RekeyAttempt(
        request.shares,
        request.threshold,
        request.requireVerification === true,
      );
      return this.rekeyStatus();
    });
  }

  rekeyUpdate(share: string, nonce: string): Promise<RekeyStatus> {
    return this.mutex.run(async () => {
      const store = this.#barrier.openStore();
      const config = await this.requireConfig();
      const rekey = this.#requireRekey();
      if (rekey.verification !== undefined) {
        throw new KeywardError(
          "invalid_state",
          "the current shares of this rekey are complete and its new shares wait for verification: submit new shares to sys/rekey/verify, or cancel the rekey",
        );
      }
      if (nonce !== rekey.nonce) {
        throw invalidField("nonce", "the nonce does not match the rekey in progress");
      }

      rekey.currentShares.add(decodeRootKeyShare(share, config));
      if (rekey.currentShares.progress < config.threshold) return this.rekeyStatus();

      // Enough old shares. A wrong set resets progress but keeps the rekey.
      const next = "the rekey's progress was reset; submit the current shares again";
      const secret = await rebuildRootKey(rekey.currentShares.take()).catch((error: unknown) => {
        throw this.wrongShares(error, next);
      });
      const matches = this.secretMatches(secret, config, store);
      secret.fill(0);
      if (!matches) throw this.wrongShares(undefined, next);

      const created = await this.createShares(rekey.shares, rekey.threshold);
      if (rekey.requireVerification) {
        // The new shares stay in memory only; the stored configuration and the current shares stay in force.
        rekey.awaitVerification(created, config);
        return { ...(await this.rekeyStatus()), complete: created.result };
      }
      try {
        await this.#commit(store, created, config);
      } finally {
        created.secret.fill(0);
      }
      this.#rekey = undefined;
      return {
        started: false,
        nonce: rekey.nonce,
        progress: 0,
        required: created.config.threshold,
        shares: created.config.shares,
        threshold: created.config.threshold,
        verificationRequired: false,
        verificationNonce: "",
        complete: created.result,
      };
    });
  }

  async rekeyStatus(): Promise<RekeyStatus> {
    this.#barrier.openStore();
    const config = await this.requireConfig();
    const rekey = this.#rekey;
    return {
      started: rekey !== undefined,
      nonce: rekey?.nonce ?? "",
      progress: rekey?.currentShares.progress ?? 0,
      required: config.threshold,
      shares: rekey?.shares ?? 0,
      threshold: rekey?.threshold ?? 0,
      verificationRequired: rekey?.requireVerification ?? false,
      verificationNonce: rekey?.verification?.nonce ?? "",
    };
  }

  rekeyCancel(): Promise<void> {
    return this.mutex.run(async () => {
      this.#barrier.openStore();
      this.#clearRekey();
    });
  }

  async rekeyVerifyStatus(): Promise<RekeyVerificationStatus> {
    this.#barrier.openStore();
    await this.requireConfig();
    return this.#verificationStatus(this.#requireVerification());
  }

  rekeyVerifyUpdate(share: string, nonce: string): Promise<RekeyVerificationStatus> {
    return this.mutex.run(async () => {
      const store = this.#barrier.openStore();
      await this.requireConfig();
      const verification = this.#requireVerification();
      if (nonce !== verification.nonce) {
        throw invalidField("nonce", "the nonce does not match the rekey verification in progress");
      }

      verification.add(share);
      const { config } = verification.created;
      if (verification.progress < config.threshold) return this.#verificationStatus(verification);

      // Each submitted share is one of the issued ones, so they should rebuild
      // the new secret. The check guards against a broken split.
      const secret = await rebuildRootKey(verification.take()).catch((error: unknown) => {
        throw this.#wrongNewShares(error);
      });
      const matches = verification.matches(secret);
      secret.fill(0);
      if (!matches) throw this.#wrongNewShares(undefined);

      // A failed commit keeps the new shares waiting, so the same shares can be submitted again.
      await this.#commit(store, verification.created, verification.replaced);
      const status = { ...this.#verificationStatus(verification), started: false, complete: true };
      this.#clearRekey();
      return status;
    });
  }

  rekeyVerifyReset(): Promise<RekeyVerificationStatus> {
    return this.mutex.run(async () => {
      this.#barrier.openStore();
      await this.requireConfig();
      const verification = this.#requireVerification();
      verification.reset();
      return this.#verificationStatus(verification);
    });
  }

  verifyShares(shares: string[]): Promise<boolean> {
    return this.mutex.run(async () => {
      const store = this.#barrier.openStore();
      const config = await this.requireConfig();
      const collector = new ShareCollector();
      try {
        for (const share of shares) collector.add(decodeRootKeyShare(share, config));
      } catch (error) {
        collector.clear();
        throw error;
      }
      if (collector.progress < config.threshold) {
        collector.clear();
        return false;
      }

      let secret: Buffer;
      try {
        secret = await rebuildRootKey(collector.take());
      } catch (error) {
        // Shares that cannot be combined are a wrong set, the same as shares that rebuild another key.
        if (
          error instanceof KeywardError &&
          (error.code === "decryption_failed" || error.code === "invalid_shares")
        ) {
          return false;
        }
        throw error;
      }
      const matches = this.secretMatches(secret, config, store);
      secret.fill(0);
      return matches;
    });
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Returns the error for a set of shares that does not rebuild the current
   * secret. Other errors (storage failures) pass through unchanged.
   */
  protected wrongShares(cause: unknown, next: string): unknown {
    if (
      cause !== undefined &&
      !(cause instanceof KeywardError && cause.code === "decryption_failed")
    ) {
      return cause;
    }
    return new KeywardError(
      "invalid_shares",
      `the submitted ${this.shareNames.shares} shares do not rebuild the ${this.shareNames.secret}; ${next}`,
      { cause },
    );
  }

  /**
   * Decrypts the stored keyring with `rootKey` and opens the barrier, then
   * notifies the listeners. Takes ownership of `rootKey`: the barrier keeps it,
   * or it is zeroed on failure. A key that does not decrypt the keyring
   * throws what `wrongRootKey` returns. Call it under the mutex.
   */
  protected async openBarrier(
    rootKey: Buffer,
    wrongRootKey: (cause: unknown) => unknown,
  ): Promise<void> {
    let keyring: Keyring;
    try {
      const record = await this.storage.get(KEYRING_KEY);
      if (record === undefined) {
        throw new KeywardError(
          "storage_failure",
          `the keyring at ${KEYRING_KEY} is missing although the seal configuration exists: the storage data is corrupted`,
        );
      }
      keyring = decryptKeyring(record, rootKey);
    } catch (error) {
      rootKey.fill(0);
      if (error instanceof KeywardError && error.code === "decryption_failed") {
        throw wrongRootKey(error);
      }
      throw error;
    }

    this.#barrier.open(
      new KeyringStore(this.storage, rootKey, keyring, () => this.#sealForForeignRootKey()),
    );
    const listenerError = await this.#notify(false);
    if (listenerError !== undefined) throw listenerError;
  }

  #requireRekey(): RekeyAttempt {
    if (this.#rekey === undefined) {
      throw new KeywardError("invalid_state", "no rekey is in progress: start one first");
    }
    return this.#rekey;
  }

  #requireVerification(): RekeyVerification {
    const verification = this.#requireRekey().verification;
    if (verification === undefined) {
      throw new KeywardError(
        "invalid_state",
        "no new shares wait for verification: start a rekey with require_verification and submit the current shares first",
      );
    }
    return verification;
  }

  /** Returns the error for new shares that do not rebuild the new secret; other errors pass through. */
  #wrongNewShares(cause: unknown): unknown {
    if (
      cause !== undefined &&
      !(cause instanceof KeywardError && cause.code === "decryption_failed")
    ) {
      return cause;
    }
    const { shares, secret } = this.shareNames;
    return new KeywardError(
      "invalid_shares",
      `the submitted new ${shares} shares do not rebuild the new ${secret}; the verification's progress was reset, so submit the new shares again`,
      { cause },
    );
  }

  #verificationStatus(verification: RekeyVerification): RekeyVerificationStatus {
    return {
      started: true,
      nonce: verification.nonce,
      progress: verification.progress,
      shares: verification.created.config.shares,
      threshold: verification.created.config.threshold,
      complete: false,
    };
  }

  /** Stores the new shares' configuration (and secret) and caches the configuration. */
  async #commit(store: KeyringStore, created: NewShares, replaced: SealConfig): Promise<void> {
    await this.commitShares(store, created, replaced);
    this.#config = created.config;
  }

  /** Zeroes and drops the rekey in progress, with any new shares that wait for verification. */
  #clearRekey(): void {
    this.#rekey?.clear();
    this.#rekey = undefined;
  }

  /** Zeroes and drops the unseal shares submitted so far. */
  protected clearUnsealProgress(): void {
    this.#unseal?.clear();
    this.#unseal = undefined;
  }

  /**
   * Reads the seal configuration, once. Throws `seal_mismatch` when the
   * storage was initialised with another seal type.
   */
  protected async loadConfig(): Promise<SealConfig | undefined> {
    if (this.#config === undefined) {
      const stored = await readSealConfig(this.storage);
      if (stored !== undefined && stored.type !== this.type) {
        throw sealMismatch(stored.type, this.type);
      }
      this.#config = stored;
    }
    return this.#config;
  }

  protected async requireConfig(): Promise<SealConfig> {
    const config = await this.loadConfig();
    if (config === undefined) throw notInitialized();
    return config;
  }

  /**
   * Calls every listener in registration order, even after one fails, and
   * returns the first error so the caller can re-throw it once the state
   * change is complete.
   */
  async #notify(sealed: boolean): Promise<unknown> {
    let firstError: unknown;
    for (const listener of this.#listeners) {
      try {
        await listener(sealed);
      } catch (error) {
        firstError ??= error;
      }
    }
    return firstError;
  }
}
