import type { Logger } from "pino";
import { invalidField, isKeywardError, KeywardError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { Mutex } from "../util/mutex.ts";
import { AesGcmBarrier } from "./barrier.ts";
import { decryptKeyring, encryptKeyring, KEYRING_KEY, Keyring } from "./keyring.ts";
import { KeyringStore } from "./keyring-store.ts";
import { decodeRootKeyShare, generateRootKey, rebuildRootKey, splitRootKey } from "./root-key.ts";
import {
  createSealConfig,
  encodeSealConfig,
  readSealConfig,
  SEAL_CONFIG_KEY,
  type SealConfig,
} from "./seal-config.ts";
import { ShareCollector } from "./share-collector.ts";
import type {
  Barrier,
  InitRequest,
  InitResult,
  KeyStatus,
  RekeyStatus,
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

/** A rekey in progress: the new share counts and the old shares collected so far. */
interface RekeyAttempt {
  shares: number;
  threshold: number;
  collector: ShareCollector;
}

function notInitialized(): KeywardError {
  return new KeywardError("not_initialized", "the server is not initialised: initialise it first");
}

/**
 * Creates the seal manager for `storage`. It starts sealed; `status()`
 * reads whether the storage is initialised.
 *
 * State changes (init, unseal, seal, rotate, rekey) run one at a time under
 * a mutex. Change listeners run inside that lock, so a listener must not
 * call a state-changing method of this manager: it would wait forever.
 */
/**
 * Returns the error for a set of shares that does not rebuild the root key. Other
 * errors (storage failures) pass through unchanged.
 */
function wrongShares(cause: unknown, next: string): unknown {
  if (
    cause !== undefined &&
    !(cause instanceof KeywardError && cause.code === "decryption_failed")
  ) {
    return cause;
  }
  return new KeywardError(
    "invalid_shares",
    `the submitted unseal key shares do not rebuild the root key; ${next}`,
    { cause },
  );
}

export function createSealManager(storage: Storage, options: SealManagerOptions = {}): SealManager {
  return new ShamirSealManager(storage, options);
}

class ShamirSealManager implements SealManager {
  readonly #storage: Storage;
  readonly #clock: () => Date;
  readonly #logger: Logger | undefined;
  readonly #barrier: AesGcmBarrier;
  readonly #mutex = new Mutex();
  readonly #listeners: ChangeListener[] = [];
  /** The seal configuration, cached once read; it changes only by init and rekey. */
  #config: SealConfig | undefined;
  #unseal: ShareCollector | undefined;
  #rekey: RekeyAttempt | undefined;

  constructor(storage: Storage, options: SealManagerOptions) {
    this.#storage = storage;
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger;
    this.#barrier = new AesGcmBarrier(storage);
  }

  get barrier(): Barrier {
    return this.#barrier;
  }

  async status(): Promise<SealStatus> {
    const config = await this.#loadConfig();
    return {
      initialized: config !== undefined,
      sealed: this.#barrier.sealed,
      threshold: config?.threshold ?? 0,
      shares: config?.shares ?? 0,
      progress: this.#unseal?.progress ?? 0,
      nonce: this.#unseal?.nonce ?? "",
      storageType: this.#storage.kind,
    };
  }

  init(request: InitRequest): Promise<InitResult> {
    return this.#mutex.run(async () => {
      const config = createSealConfig(request.shares, request.threshold);
      if ((await this.#loadConfig()) !== undefined) throw alreadyInitialized();

      const rootKey = generateRootKey();
      const keyring = Keyring.create(this.#clock());
      try {
        // Split before storing anything, because an installation stored as
        // initialised with no shares handed out could never be unsealed.
        const result = await splitRootKey(rootKey, config);
        const record = encryptKeyring(keyring, rootKey, () => 0);
        await this.#storage.transaction(async (tx) => {
          if ((await tx.get(SEAL_CONFIG_KEY)) !== undefined) throw alreadyInitialized();
          await tx.put(SEAL_CONFIG_KEY, encodeSealConfig(config));
          await tx.put(KEYRING_KEY, record);
        });
        this.#config = config;
        return result;
      } finally {
        rootKey.fill(0);
        keyring.destroy();
      }
    });
  }

  submitUnsealShare(share: string): Promise<SealStatus> {
    return this.#mutex.run(async () => {
      const config = await this.#requireConfig();
      if (!this.#barrier.sealed) return this.status();

      const decoded = decodeRootKeyShare(share, config);
      this.#unseal ??= new ShareCollector();
      this.#unseal.add(decoded);
      if (this.#unseal.progress < config.threshold) return this.status();

      // Enough shares: the attempt ends here whether or not the shares are right.
      const shares = this.#unseal.take();
      this.#unseal = undefined;
      const rootKey = await rebuildRootKey(shares).catch((error: unknown) => {
        throw wrongShares(error, "the unseal attempt was reset; submit the shares again");
      });
      let keyring: Keyring;
      try {
        const record = await this.#storage.get(KEYRING_KEY);
        if (record === undefined) {
          throw new KeywardError(
            "storage_failure",
            `the keyring at ${KEYRING_KEY} is missing although the seal configuration exists: the storage data is corrupted`,
          );
        }
        keyring = decryptKeyring(record, rootKey);
      } catch (error) {
        rootKey.fill(0);
        throw wrongShares(error, "the unseal attempt was reset; submit the shares again");
      }

      this.#barrier.open(
        new KeyringStore(this.#storage, rootKey, keyring, () => this.#sealForForeignRootKey()),
      );
      const listenerError = await this.#notify(false);
      if (listenerError !== undefined) throw listenerError;
      return this.status();
    });
  }

  resetUnseal(): Promise<SealStatus> {
    return this.#mutex.run(async () => {
      this.#unseal?.clear();
      this.#unseal = undefined;
      return this.status();
    });
  }

  seal(): Promise<void> {
    return this.#mutex.run(async () => {
      this.#unseal?.clear();
      this.#unseal = undefined;
      this.#rekey?.collector.clear();
      this.#rekey = undefined;
      if (this.#barrier.sealed) return;

      // Listeners run first, while the barrier is still open, and sealing
      // goes ahead even when one fails.
      const listenerError = await this.#notify(true);
      const store = this.#barrier.close();
      const writeError = await store?.close();
      if (writeError !== undefined) {
        this.#logger?.warn(
          { err: writeError },
          "failed to store barrier encryption counts at seal; the stored counts stay at their last, higher reservation",
        );
      }
      if (listenerError !== undefined) throw listenerError;
    });
  }

  async refresh(): Promise<void> {
    await this.#mutex.run(async () => {
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
    this.#logger?.error(
      {},
      "the stored keyring is encrypted under a root key this node does not hold, because another node rekeyed: sealing; unseal with the new key shares",
    );
    setImmediate(() => {
      this.seal().catch((error: unknown) => {
        this.#logger?.error({ err: error }, "failed to seal after the root key changed");
      });
    });
  }

  rotate(): Promise<KeyStatus> {
    return this.#mutex.run(async () => {
      await this.#barrier.openStore().rotate(this.#clock());
      return this.keyStatus();
    });
  }

  async keyStatus(): Promise<KeyStatus> {
    const active = this.#barrier.openStore().keyring.active;
    return { term: active.term, installTime: active.installTime, encryptions: active.encryptions };
  }

  rekeyInit(request: InitRequest): Promise<RekeyStatus> {
    return this.#mutex.run(async () => {
      this.#barrier.openStore();
      const config = createSealConfig(request.shares, request.threshold);
      if (this.#rekey !== undefined) {
        throw new KeywardError(
          "invalid_state",
          "a rekey is already in progress: finish or cancel it before starting another",
        );
      }
      this.#rekey = {
        shares: config.shares,
        threshold: config.threshold,
        collector: new ShareCollector(),
      };
      return this.rekeyStatus();
    });
  }

  rekeyUpdate(share: string, nonce: string): Promise<RekeyStatus> {
    return this.#mutex.run(async () => {
      const store = this.#barrier.openStore();
      const config = await this.#requireConfig();
      const rekey = this.#rekey;
      if (rekey === undefined) {
        throw new KeywardError("invalid_state", "no rekey is in progress: start one first");
      }
      if (nonce !== rekey.collector.nonce) {
        throw invalidField("nonce", "the nonce does not match the rekey in progress");
      }

      rekey.collector.add(decodeRootKeyShare(share, config));
      if (rekey.collector.progress < config.threshold) return this.rekeyStatus();

      // Enough old shares. A wrong set resets progress but keeps the rekey.
      const oldRootKey = await rebuildRootKey(rekey.collector.take()).catch((error: unknown) => {
        throw wrongShares(error, "the rekey's progress was reset; submit the current shares again");
      });
      const matches = store.rootKeyEquals(oldRootKey);
      oldRootKey.fill(0);
      if (!matches) {
        throw wrongShares(
          undefined,
          "the rekey's progress was reset; submit the current shares again",
        );
      }

      const newConfig = createSealConfig(rekey.shares, rekey.threshold);
      const newRootKey = generateRootKey();
      let complete: InitResult;
      try {
        complete = await splitRootKey(newRootKey, newConfig);
        await store.replaceRootKey(newRootKey, newConfig);
      } catch (error) {
        newRootKey.fill(0);
        throw error;
      }
      this.#config = newConfig;
      this.#rekey = undefined;
      return {
        started: false,
        nonce: rekey.collector.nonce,
        progress: 0,
        required: newConfig.threshold,
        shares: newConfig.shares,
        threshold: newConfig.threshold,
        complete,
      };
    });
  }

  async rekeyStatus(): Promise<RekeyStatus> {
    this.#barrier.openStore();
    const config = await this.#requireConfig();
    const rekey = this.#rekey;
    return {
      started: rekey !== undefined,
      nonce: rekey?.collector.nonce ?? "",
      progress: rekey?.collector.progress ?? 0,
      required: config.threshold,
      shares: rekey?.shares ?? 0,
      threshold: rekey?.threshold ?? 0,
    };
  }

  rekeyCancel(): Promise<void> {
    return this.#mutex.run(async () => {
      this.#barrier.openStore();
      this.#rekey?.collector.clear();
      this.#rekey = undefined;
    });
  }

  verifyShares(shares: string[]): Promise<boolean> {
    return this.#mutex.run(async () => {
      const store = this.#barrier.openStore();
      const config = await this.#requireConfig();
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

      let rootKey: Buffer;
      try {
        rootKey = await rebuildRootKey(collector.take());
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
      const matches = store.rootKeyEquals(rootKey);
      rootKey.fill(0);
      return matches;
    });
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  async #loadConfig(): Promise<SealConfig | undefined> {
    this.#config ??= await readSealConfig(this.#storage);
    return this.#config;
  }

  async #requireConfig(): Promise<SealConfig> {
    const config = await this.#loadConfig();
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

function alreadyInitialized(): KeywardError {
  return new KeywardError("already_initialized", "the server is already initialised");
}
