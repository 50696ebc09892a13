import { KeywardError } from "../errors.ts";
import { validateKey, validatePrefix, validateValue } from "../storage/keys.ts";
import type {
  ScanOptions,
  Storage,
  StorageReader,
  StorageWriter,
  TransactionOptions,
} from "../storage/storage.ts";
import { decryptAesGcm, encryptAesGcm, GCM_NONCE_BYTES, GCM_TAG_BYTES } from "./aes-gcm.ts";
import { type KeyringStore, sealedError } from "./keyring-store.ts";
import type { Barrier } from "./types.ts";

/**
 * The prefix the seal keeps for its own records (`core/keyring`,
 * `core/seal-config`), which live in storage outside the barrier. The
 * barrier rejects every key under it, and `list("")` leaves it out, so no
 * caller can read or overwrite them through the barrier.
 */
export const SEAL_RESERVED_PREFIX = "core/";

const VALUE_FORMAT_VERSION = 1;
/** Version byte and big-endian uint32 term. */
const HEADER_BYTES = 5;

/**
 * Encryptions a barrier transaction may make without a keyring write in
 * between; one is done before the transaction starts when fewer remain.
 */
const TRANSACTION_HEADROOM = 1000;

function rejectReserved(key: string): void {
  if (key.startsWith(SEAL_RESERVED_PREFIX)) {
    throw new KeywardError(
      "invalid_request",
      `invalid storage key "${key}": keys under ${SEAL_RESERVED_PREFIX} are reserved for the seal`,
    );
  }
}

function corruptValue(key: string, reason: string): KeywardError {
  return new KeywardError(
    "storage_failure",
    `the stored value at "${key}" ${reason}: the storage data is corrupted or was modified outside Keyward`,
    { details: { key } },
  );
}

/** Builds the associated data from the value's header and its storage key, so a value moved to another key fails. */
function associatedData(header: Buffer, key: string): Buffer {
  return Buffer.concat([header, Buffer.from(key, "utf8")]);
}

/**
 * The AES-256-GCM barrier over a Storage. It is sealed until the seal
 * manager hands it a KeyringStore with `open`.
 *
 * A stored value is: version (1 byte) || term (uint32 BE) || nonce (12) ||
 * ciphertext || tag (16). The associated data is the 5-byte header followed
 * by the UTF-8 storage key. Each encryption uses a random nonce.
 */
export class AesGcmBarrier implements Barrier {
  readonly #storage: Storage;
  #store: KeyringStore | undefined;

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  get sealed(): boolean {
    return this.#store === undefined;
  }

  /** Opens the barrier with the unsealed keys. */
  open(store: KeyringStore): void {
    this.#store = store;
  }

  /** Closes the barrier and returns the store it held, which the caller closes. */
  close(): KeyringStore | undefined {
    const store = this.#store;
    this.#store = undefined;
    return store;
  }

  /** Returns the open store, or throws `sealed`. */
  openStore(): KeyringStore {
    if (this.#store === undefined) throw sealedError();
    return this.#store;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(this, key);
    return this.decryptFresh(key, await this.#storage.get(key));
  }

  list(prefix: string): Promise<string[]> {
    return listChildren(this, this.#storage, prefix);
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return scanKeys(this, this.#storage, prefix, options);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    checkKey(this, key);
    validateValue(value);
    // The stored count of the active term must cover this encryption
    // before it happens; reserving may need a keyring write first.
    for (;;) {
      const store = this.openStore();
      const active = store.keyring.active;
      if (active.encryptions < active.storedEncryptions) break;
      await store.reserveEncryptions(1);
    }
    await this.#storage.put(key, this.encrypt(key, value));
  }

  async delete(key: string): Promise<void> {
    checkKey(this, key);
    await this.#storage.delete(key);
  }

  /**
   * Runs `work` in one storage transaction. Its writer encrypts and
   * decrypts like the barrier and fails with `sealed` once the barrier is
   * sealed, which rolls the transaction back.
   */
  async transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    // NOTE: a transaction that encrypts more than TRANSACTION_HEADROOM
    // values runs past the stored count, so a crash before the next keyring
    // write can leave that count low by the excess.
    await this.openStore().reserveEncryptions(TRANSACTION_HEADROOM);
    return this.#storage.transaction((raw) => work(new BarrierTransaction(this, raw)), options);
  }

  /** Encrypts `value` for `key` with the active term. Throws `sealed` when sealed. */
  encrypt(key: string, value: Uint8Array): Buffer {
    const active = this.openStore().keyring.active;
    active.encryptions += 1;
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt8(VALUE_FORMAT_VERSION, 0);
    header.writeUInt32BE(active.term, 1);
    const { nonce, sealed } = encryptAesGcm(active.key, value, associatedData(header, key));
    return Buffer.concat([header, nonce, sealed]);
  }

  /**
   * Decrypts like `decrypt`, first reloading the keyring when the value
   * names a newer term than it has: another node sharing the storage
   * rotated the barrier key and wrote the value under the new term.
   */
  async decryptFresh(key: string, stored: Uint8Array | undefined): Promise<Uint8Array | undefined> {
    if (
      stored !== undefined &&
      stored.length >= HEADER_BYTES &&
      stored[0] === VALUE_FORMAT_VERSION
    ) {
      const term = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).readUInt32BE(1);
      const store = this.openStore();
      if (term > store.keyring.activeTerm) await store.reload();
    }
    return this.decrypt(key, stored);
  }

  /** Decrypts a stored value for `key`. Throws `sealed` when sealed, `storage_failure` when it fails. */
  decrypt(key: string, stored: Uint8Array | undefined): Uint8Array | undefined {
    const keyring = this.openStore().keyring;
    if (stored === undefined) return undefined;
    const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    if (bytes.length < HEADER_BYTES + GCM_NONCE_BYTES + GCM_TAG_BYTES) {
      throw corruptValue(key, "is too short to be a barrier value");
    }
    if (bytes[0] !== VALUE_FORMAT_VERSION) {
      throw corruptValue(key, `has unknown format version ${bytes[0]}`);
    }
    const header = bytes.subarray(0, HEADER_BYTES);
    const termNumber = header.readUInt32BE(1);
    const term = keyring.term(termNumber);
    if (term === undefined) {
      throw corruptValue(key, `names barrier key term ${termNumber}, which the keyring lacks`);
    }
    const nonceEnd = HEADER_BYTES + GCM_NONCE_BYTES;
    const plaintext = decryptAesGcm(
      term.key,
      bytes.subarray(HEADER_BYTES, nonceEnd),
      bytes.subarray(nonceEnd),
      associatedData(header, key),
    );
    if (plaintext === undefined) throw corruptValue(key, "failed its integrity check");
    return plaintext;
  }
}

/** The writer a barrier transaction's work receives. */
class BarrierTransaction implements StorageWriter {
  readonly #barrier: AesGcmBarrier;
  readonly #raw: StorageWriter;

  constructor(barrier: AesGcmBarrier, raw: StorageWriter) {
    this.#barrier = barrier;
    this.#raw = raw;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(this.#barrier, key);
    return this.#barrier.decryptFresh(key, await this.#raw.get(key));
  }

  list(prefix: string): Promise<string[]> {
    return listChildren(this.#barrier, this.#raw, prefix);
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return scanKeys(this.#barrier, this.#raw, prefix, options);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    checkKey(this.#barrier, key);
    validateValue(value);
    await this.#raw.put(key, this.#barrier.encrypt(key, value));
  }

  async delete(key: string): Promise<void> {
    checkKey(this.#barrier, key);
    await this.#raw.delete(key);
  }
}

/** Checks that the barrier is open and `key` is a valid key outside the seal's prefix. */
function checkKey(barrier: AesGcmBarrier, key: string): void {
  barrier.openStore();
  validateKey(key);
  rejectReserved(key);
}

/** Lists through the barrier: the seal's own prefix is never listed or listable. */
async function listChildren(
  barrier: AesGcmBarrier,
  reader: StorageReader,
  prefix: string,
): Promise<string[]> {
  barrier.openStore();
  validatePrefix(prefix);
  rejectReserved(prefix);
  const children = await reader.list(prefix);
  barrier.openStore();
  return prefix === "" ? children.filter((child) => child !== SEAL_RESERVED_PREFIX) : children;
}

/**
 * Scans through the barrier. The whole store cannot be scanned, because a
 * page would have to skip the seal's own keys and could come back short.
 */
async function scanKeys(
  barrier: AesGcmBarrier,
  reader: StorageReader,
  prefix: string,
  options: ScanOptions,
): Promise<string[]> {
  barrier.openStore();
  validatePrefix(prefix);
  if (prefix === "") {
    throw new KeywardError("invalid_request", "a scan through the barrier needs a prefix");
  }
  rejectReserved(prefix);
  const names = await reader.scan(prefix, options);
  barrier.openStore();
  return names;
}
