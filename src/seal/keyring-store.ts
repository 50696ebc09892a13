import { timingSafeEqual } from "node:crypto";
import { isKeywardError, KeywardError } from "../errors.ts";
import type { Storage } from "../storage/storage.ts";
import { Mutex } from "../util/mutex.ts";
import {
  decryptKeyring,
  encryptKeyring,
  KEYRING_KEY,
  type Keyring,
  type KeyringTerm,
} from "./keyring.ts";
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

/** The content of one keyring write: the keyring and the encryption count of each term. */
interface KeyringWrite {
  keyring: Keyring;
  counts: Map<KeyringTerm, number>;
}

/**
 * The unsealed state: the root key and the keyring in memory. It writes
 * `core/keyring` under one mutex, building the record inside the lock, so a
 * later write never carries an older keyring.
 *
 * Several nodes may share the storage. Each write therefore reads the
 * stored keyring in the same transaction and keeps what other nodes added:
 * their terms (a rotation made elsewhere) and their reservations. A node
 * reserves encryptions as a block above the highest stored count, so the
 * blocks of two nodes never overlap and the stored count stays at least the
 * sum of every node's encryptions. A failed write leaves memory as it was.
 */
export class KeyringStore {
  readonly #storage: Storage;
  readonly #mutex = new Mutex();
  readonly #onForeignRootKey: (() => void) | undefined;
  #rootKey: Buffer;
  #keyring: Keyring;
  #closed = false;

  /**
   * Takes ownership of `rootKey` and `keyring`; `close()` zeroes both.
   * `onForeignRootKey` runs when the stored keyring is no longer encrypted
   * under this root key, because another node replaced it (a rekey): this
   * node must then be sealed and unsealed with the new shares.
   */
  constructor(storage: Storage, rootKey: Buffer, keyring: Keyring, onForeignRootKey?: () => void) {
    this.#storage = storage;
    this.#rootKey = rootKey;
    this.#keyring = keyring;
    this.#onForeignRootKey = onForeignRootKey;
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
   * above its current count, writing the keyring when it is not. The new
   * block starts at the highest count stored by any node.
   */
  reserveEncryptions(headroom: number): Promise<void> {
    return this.#locked(async () => {
      const active = this.#keyring.active;
      if (active.storedEncryptions - active.encryptions >= headroom) return;
      let blockStart = 0;
      await this.#write(this.#rootKey, (keyring, stored) => {
        const current = keyring.active;
        blockStart = Math.max(current.encryptions, storedCountOf(stored, current));
        return {
          keyring,
          counts: mergedCounts(keyring, stored, (term) =>
            term === current ? blockStart + Math.max(headroom, ENCRYPTION_RESERVATION) : undefined,
          ),
        };
      });
      const current = this.#keyring.active;
      current.encryptions = Math.max(current.encryptions, blockStart);
    });
  }

  /** Adds a new term after the newest stored one and makes it active, once it is stored. */
  rotate(installTime: Date): Promise<void> {
    return this.#locked(async () => {
      let created: KeyringTerm | undefined;
      try {
        await this.#write(this.#rootKey, (keyring, stored) => {
          created?.key.fill(0);
          const next = keyring.withNewTerm(installTime);
          created = next.active;
          return { keyring: next, counts: mergedCounts(next, stored, () => undefined) };
        });
      } catch (error) {
        created?.key.fill(0);
        throw error;
      }
    });
  }

  /**
   * Reads the stored keyring and adds the terms another node stored, so
   * values it encrypted under a new term decrypt here. Does nothing when
   * there is none.
   */
  reload(): Promise<void> {
    return this.#locked(async () => {
      const record = await this.#storage.get(KEYRING_KEY);
      if (record === undefined) return;
      const stored = this.#decryptStored(record);
      try {
        this.#keyring = this.#keyring.withTermsOf(stored);
      } finally {
        stored.destroy();
      }
    });
  }

  /**
   * Re-encrypts the keyring under `rootKey` and stores it with `config` in
   * one transaction, then makes `rootKey` current and zeroes the old one.
   * Takes ownership of `rootKey` only when the write succeeds.
   */
  replaceRootKey(rootKey: Buffer, config: SealConfig): Promise<void> {
    return this.#locked(async () => {
      await this.#write(
        rootKey,
        (keyring, stored) => ({
          keyring,
          counts: mergedCounts(keyring, stored, () => undefined),
        }),
        config,
      );
      this.#rootKey.fill(0);
      this.#rootKey = rootKey;
    });
  }

  /**
   * Writes the exact encryption counts where no other node reserved since
   * this one last wrote, then zeroes the root key and the keyring. Waits for
   * writes in flight. Returns the error of the final write instead of
   * throwing it, because sealing must go ahead anyway (the stored counts are
   * then the last reservation, which is higher).
   */
  close(): Promise<unknown> {
    return this.#mutex.run(async () => {
      if (this.#closed) return undefined;
      let writeError: unknown;
      try {
        await this.#write(this.#rootKey, (keyring, stored) => ({
          keyring,
          counts: mergedCounts(keyring, stored, (term) => {
            const storedCount = stored?.term(term.term)?.storedEncryptions;
            const untouched = storedCount === undefined || storedCount <= term.storedEncryptions;
            return untouched ? term.encryptions : undefined;
          }),
        }));
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

  /**
   * Stores the keyring that `plan` builds from this node's keyring merged
   * with the stored one, under `rootKey` (with `config` when given), in one
   * transaction, then makes it current and records the counts written.
   * `plan` may run more than once, because the storage may retry the
   * transaction, so it must not change anything itself.
   */
  async #write(
    rootKey: Buffer,
    plan: (keyring: Keyring, stored: Keyring | undefined) => KeyringWrite,
    config?: SealConfig,
  ): Promise<void> {
    const written = await this.#storage.transaction(async (tx) => {
      const record = await tx.get(KEYRING_KEY);
      const stored = record === undefined ? undefined : this.#decryptStored(record);
      try {
        const merged = stored === undefined ? this.#keyring : this.#keyring.withTermsOf(stored);
        const result = plan(merged, stored);
        const counts = result.counts;
        if (config !== undefined) await tx.put(SEAL_CONFIG_KEY, encodeSealConfig(config));
        await tx.put(
          KEYRING_KEY,
          encryptKeyring(result.keyring, rootKey, (term) => counts.get(term)!),
        );
        return result;
      } finally {
        stored?.destroy();
      }
    });
    this.#keyring = written.keyring;
    for (const [term, count] of written.counts) term.storedEncryptions = count;
  }

  /** Decrypts the stored keyring with this node's root key; seals the node when another node replaced it. */
  #decryptStored(record: Uint8Array): Keyring {
    try {
      return decryptKeyring(record, this.#rootKey);
    } catch (error) {
      if (!isKeywardError(error) || error.code !== "decryption_failed") throw error;
      this.#onForeignRootKey?.();
      throw new KeywardError(
        "sealed",
        "the root key was replaced on another node (a rekey): unseal this node with the new key shares",
        { cause: error },
      );
    }
  }
}

/** Returns the count another node stored for `term`, or 0. */
function storedCountOf(stored: Keyring | undefined, term: KeyringTerm): number {
  return stored?.term(term.term)?.storedEncryptions ?? 0;
}

/**
 * The count to store for each term of `keyring`: `chosen` when it returns
 * one, else the highest of this node's count, its last stored count and
 * the stored one, so a write never lowers a count another node reserved.
 */
function mergedCounts(
  keyring: Keyring,
  stored: Keyring | undefined,
  chosen: (term: KeyringTerm) => number | undefined,
): Map<KeyringTerm, number> {
  return new Map(
    keyring
      .terms()
      .map((term) => [
        term,
        chosen(term) ??
          Math.max(term.encryptions, term.storedEncryptions, storedCountOf(stored, term)),
      ]),
  );
}
