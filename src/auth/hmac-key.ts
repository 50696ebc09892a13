import { createHmac, randomBytes } from "node:crypto";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { Mutex } from "../util/mutex.ts";

const HMAC_KEY_BYTES = 32;

/**
 * A per-installation HMAC-SHA256 key kept in the barrier, created at first
 * use. Auth stores secrets (tokens, role IDs, secret IDs) only as HMACs under
 * such a key, and uses the HMACs as storage keys. Storage keys are not
 * encrypted, so a plain hash there would let anyone with a copy of the
 * database test guesses of a weak, operator-chosen token offline. An HMAC
 * cannot be checked without the key, which only the unsealed barrier reads.
 */
export class BarrierHmacKey {
  readonly #barrier: Barrier;
  readonly #storageKey: string;
  readonly #mutex = new Mutex();
  /** The key as last read or created, until `clear()` drops it at seal. */
  #key: Buffer | undefined;

  constructor(barrier: Barrier, storageKey: string) {
    this.#barrier = barrier;
    this.#storageKey = storageKey;
  }

  /** Returns HMAC-SHA256(key, value) as lowercase hex. */
  async digest(value: string): Promise<string> {
    const key = await this.#load();
    return createHmac("sha256", key).update(value, "utf8").digest("hex");
  }

  /** Forgets the cached key and zeroes it. */
  clear(): void {
    this.#key?.fill(0);
    this.#key = undefined;
  }

  async #load(): Promise<Buffer> {
    if (this.#key !== undefined) return this.#key;
    return this.#mutex.run(async () => {
      if (this.#key !== undefined) return this.#key;
      const stored = await this.#barrier.get(this.#storageKey);
      if (stored !== undefined) {
        if (stored.length !== HMAC_KEY_BYTES) {
          throw new KeywardError(
            "storage_failure",
            `the HMAC key at ${this.#storageKey} has ${stored.length} bytes instead of ${HMAC_KEY_BYTES}: the storage data is corrupted`,
          );
        }
        this.#key = Buffer.from(stored);
        return this.#key;
      }
      const created = randomBytes(HMAC_KEY_BYTES);
      await this.#barrier.put(this.#storageKey, created);
      this.#key = created;
      return created;
    });
  }
}
