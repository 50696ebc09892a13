import { timingSafeEqual } from "node:crypto";
import { KeywardError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { Mutex } from "../util/mutex.ts";
import { encryptKeyring, KEYRING_KEY, type Keyring, type KeyringTerm } from "./keyring.ts";
import { encodeSealConfig, SEAL_CONFIG_KEY, type SealConfig } from "./seal-config.ts";

/**
 * Encryptions reserved per keyring write. The stored count of the active
 * term runs this far ahead of the real one, so after a crash the count is
 * high by less than this, never low, and the barrier writes the keyring once
 * per this many values.
 */
export const ENCRYPTION_RESERVATION = 10_000;

export function sealedError(): KeywardError {
  return new KeywardError("sealed", "the server is sealed: unseal it with its key shares first");
}

/**
 * The unsealed state: the root key and the keyring in memory. It is the
 * only writer of `core/keyring`, and it writes under one mutex, building the
 * record inside the lock, so a later write never carries an older keyring.
 * A failed write leaves memory as it was.
 */
export class KeyringStore {
  readonly #storage: Storage;
  readonly #mutex = new Mutex();
  #rootKey: Buffer;
  #keyring: Keyring;
  #closed = false;

  /** Takes ownership of `rootKey` and `keyring`; `close()` zeroes both. */
  constructor(storage: Storage, rootKey: Buffer, keyring: Keyring) {
    this.#storage = storage;
    this.#rootKey = rootKey;
    this.#keyring = keyring;
  }

  get keyring(): Keyring {
    return this.#keyring;
  }

  /** Compares a rebuilt root key with the current one in constant time. */
  rootKeyEquals(candidate: Uint8Array): boolean {
    return candidate.length === this.#rootKey.length && timingSafeEqual(candidate, this.#rootKey);
  }

  /**
   * Ensures the stored count of the active term is at least `headroom`
   * above its current count, writing the keyring when it is not.
   */
  reserveEncryptions(headroom: number): Promise<void> {
    return this.#locked(async () => {
      const active = this.#keyring.active;
      if (active.storedEncryptions - active.encryptions >= headroom) return;
      const target = active.encryptions + Math.max(headroom, ENCRYPTION_RESERVATION);
      await this.#write(this.#keyring, this.#rootKey, (term) =>
        term === active ? target : storedCount(term),
      );
    });
  }

  /** Adds a new term and makes it active, once it is stored. */
  rotate(installTime: Date): Promise<void> {
    return this.#locked(async () => {
      const next = this.#keyring.withNewTerm(installTime);
      try {
        await this.#write(next, this.#rootKey, storedCount);
      } catch (error) {
        next.active.key.fill(0);
        throw error;
      }
      this.#keyring = next;
    });
  }

  /**
   * Re-encrypts the keyring under `rootKey` and stores it with `config` in
   * one transaction, then makes `rootKey` current and zeroes the old one.
   * Takes ownership of `rootKey` only when the write succeeds.
   */
  replaceRootKey(rootKey: Buffer, config: SealConfig): Promise<void> {
    return this.#locked(async () => {
      await this.#write(this.#keyring, rootKey, storedCount, config);
      this.#rootKey.fill(0);
      this.#rootKey = rootKey;
    });
  }

  /**
   * Writes the exact encryption counts, then zeroes the root key and the
   * keyring. Waits for writes in flight. Returns the error of the final
   * write instead of throwing it, because sealing must go ahead anyway (the
   * stored counts are then the last reservation, which is higher).
   */
  close(): Promise<unknown> {
    return this.#mutex.run(async () => {
      if (this.#closed) return undefined;
      let writeError: unknown;
      try {
        await this.#write(this.#keyring, this.#rootKey, (term) => term.encryptions);
      } catch (error) {
        writeError = error;
      } finally {
        this.#closed = true;
        this.#rootKey.fill(0);
        this.#keyring.destroy();
      }
      return writeError;
    });
  }

  #locked(work: () => Promise<void>): Promise<void> {
    return this.#mutex.run(async () => {
      if (this.#closed) throw sealedError();
      await work();
    });
  }

  /** Stores `keyring` under `rootKey` (with `config` when given) and records the counts written. */
  async #write(
    keyring: Keyring,
    rootKey: Buffer,
    countFor: (term: KeyringTerm) => number,
    config?: SealConfig,
  ): Promise<void> {
    const counts = new Map(keyring.terms().map((term) => [term, countFor(term)]));
    const record = encryptKeyring(keyring, rootKey, (term) => counts.get(term)!);
    if (config === undefined) {
      await this.#storage.put(KEYRING_KEY, record);
    } else {
      await this.#storage.transaction(async (tx) => {
        await tx.put(SEAL_CONFIG_KEY, encodeSealConfig(config));
        await tx.put(KEYRING_KEY, record);
      });
    }
    for (const [term, count] of counts) term.storedEncryptions = count;
  }
}

function storedCount(term: KeyringTerm): number {
  return Math.max(term.encryptions, term.storedEncryptions);
}
