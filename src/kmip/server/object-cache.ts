/**
 * A bounded in-memory cache of decoded KMIP objects, so that an operation
 * on a known object (Encrypt, Get) skips the storage read, the barrier
 * decryption and the decoding of the stored JSON and TTLV.
 */
import type { KmipItem } from "../item.ts";
import type { KmipObject } from "./object-store.ts";

/** Objects kept unless the cache is given another maximum. */
export const DEFAULT_CACHE_ENTRIES = 10_000;

/**
 * Stored size of the cached objects kept unless the cache is given another
 * maximum, in bytes of their stored JSON. A 256-bit AES key's object takes
 * about 1.2 KiB, and an RSA-4096 private key's about 4.4 KiB.
 */
export const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Returns a copy of an item that shares no mutable part with it: structures
 * get their own child arrays and byte strings their own buffers. Other
 * scalar items are shared, because their fields are read-only and their
 * values are primitives.
 */
export function copyItem(item: KmipItem): KmipItem {
  if (item.type === "Structure") {
    return { tag: item.tag, type: "Structure", value: item.value.map(copyItem) };
  }
  if (item.type === "ByteString") {
    return { tag: item.tag, type: "ByteString", value: new Uint8Array(item.value) };
  }
  return item;
}

/** Returns a deep copy of an object, which shares no mutable part with the original (see `copyItem`). */
export function copyObject(object: KmipObject): KmipObject {
  return {
    uid: object.uid,
    objectType: object.objectType,
    attributes: object.attributes.map((attribute) => ({
      name: attribute.name,
      value: copyItem(attribute.value),
    })),
    ...(object.content === undefined ? {} : { content: copyItem(object.content) }),
    ...(object.hsmObject === undefined ? {} : { hsmObject: { ...object.hsmObject } }),
    ...(object.managedKey === undefined ? {} : { managedKey: { ...object.managedKey } }),
  };
}

interface CacheEntry {
  object: KmipObject;
  bytes: number;
}

/**
 * A least-recently-used map from unique identifier to object. It stores
 * and returns copies, so no caller can change what another caller reads.
 * When it contains more than `maxEntries` objects or more than `maxBytes`
 * bytes of stored JSON, the least recently used objects go.
 *
 * `generation` changes with every `delete` and `clear`, so a storage read
 * that started before one of them can tell that its result may be stale
 * and must not be cached.
 */
export class KmipObjectCache {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #entries = new Map<string, CacheEntry>();
  #bytes = 0;
  #generation = 0;

  constructor(maxEntries = DEFAULT_CACHE_ENTRIES, maxBytes = DEFAULT_CACHE_BYTES) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** The number of cached objects. */
  get size(): number {
    return this.#entries.size;
  }

  /** The total stored size of the cached objects, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A counter that changes with every `delete` and `clear`. */
  get generation(): number {
    return this.#generation;
  }

  /** Returns a copy of the cached object, or undefined when it is not cached. */
  get(uid: string): KmipObject | undefined {
    const entry = this.#entries.get(uid);
    if (entry === undefined) return undefined;
    // Re-inserting moves the entry to the end, which Map iteration treats as newest.
    this.#entries.delete(uid);
    this.#entries.set(uid, entry);
    return copyObject(entry.object);
  }

  /** Caches a copy of `object`, whose stored JSON is `bytes` long. */
  set(object: KmipObject, bytes: number): void {
    this.adopt(copyObject(object), bytes);
  }

  /**
   * Caches `object` itself, without a copy, for a caller that holds the
   * only reference to it and drops that reference now.
   */
  adopt(object: KmipObject, bytes: number): void {
    this.#remove(object.uid);
    this.#entries.set(object.uid, { object, bytes });
    this.#bytes += bytes;
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      // An object larger than maxBytes on its own evicts everything, itself last.
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#remove(oldest);
    }
  }

  /** Drops one object. */
  delete(uid: string): void {
    this.#generation += 1;
    this.#remove(uid);
  }

  /** Drops every object. */
  clear(): void {
    this.#generation += 1;
    this.#entries.clear();
    this.#bytes = 0;
  }

  #remove(uid: string): void {
    const entry = this.#entries.get(uid);
    if (entry === undefined) return;
    this.#entries.delete(uid);
    this.#bytes -= entry.bytes;
  }
}
