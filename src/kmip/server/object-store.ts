/**
 * KMIP managed objects as JSON values behind Keyward's barrier, at
 * `kmip/objects/<uid>`. Attribute values and the object's content (the
 * Symmetric Key, Private Key, Secret Data or other structure) are kept as
 * base64 TTLV, so every KMIP type survives a round trip through JSON.
 */
import { randomBytes } from "node:crypto";
import { isKeywardError, KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { KeyedLock } from "../../util/keyed-lock.ts";
import type { KmipItem } from "../item.ts";
import { decodeTtlv, encodeTtlv } from "../ttlv.ts";
import type { KmipAttribute } from "./attributes.ts";

/** A managed object: its identifier, type, attributes and content. */
export interface KmipObject {
  readonly uid: string;
  /** The Object Type as its normalized name ("SymmetricKey", "PrivateKey"). */
  readonly objectType: string;
  readonly attributes: readonly KmipAttribute[];
  /** The object structure (such as Symmetric Key); absent once destroyed. */
  readonly content?: KmipItem;
}

interface StoredObject {
  uid: string;
  objectType: string;
  attributes: { name: string; value: string }[];
  content?: string;
}

const PREFIX = "kmip/objects/";

function toBase64(item: KmipItem): string {
  return encodeTtlv(item).toString("base64");
}

function fromBase64(text: string): KmipItem {
  return decodeTtlv(Buffer.from(text, "base64"));
}

/**
 * The store of KMIP objects. The dispatcher runs each request message inside
 * `exclusive`, so requests from different connections never interleave and
 * cannot lose each other's writes. A journal records the values a batch
 * overwrites, so a batch with the Undo option can put them back.
 */
export class KmipObjectStore {
  readonly #barrier: Barrier;
  readonly #lock = new KeyedLock();
  /** Values before the journaled batch first changed them, by storage key; undefined when absent. */
  #journal: Map<string, Uint8Array | undefined> | undefined;
  #lastMillis = 0;
  #sequence = 0;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  /**
   * Returns a fresh unique identifier: a UUID version 7 (RFC 9562), whose
   * leading millisecond timestamp and counter make identifiers sort in
   * creation order within this process, which Locate's ordering relies on.
   */
  newUid(): string {
    const now = Date.now();
    this.#sequence = now === this.#lastMillis ? this.#sequence + 1 : 0;
    this.#lastMillis = now;
    const bytes = randomBytes(16);
    bytes.writeUIntBE(now, 0, 6);
    bytes.writeUInt16BE(0x7000 | (this.#sequence & 0x0fff), 6);
    bytes[8] = (bytes[8]! & 0x3f) | 0x80;
    const hex = bytes.toString("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  async find(uid: string): Promise<KmipObject | undefined> {
    if (uid.length === 0 || uid.includes("/")) return undefined;
    const value = await this.#barrier.get(PREFIX + uid);
    if (value === undefined) return undefined;
    try {
      const stored = JSON.parse(Buffer.from(value).toString("utf8")) as StoredObject;
      return {
        uid: stored.uid,
        objectType: stored.objectType,
        attributes: stored.attributes.map((attribute) => ({
          name: attribute.name,
          value: fromBase64(attribute.value),
        })),
        ...(stored.content === undefined ? {} : { content: fromBase64(stored.content) }),
      };
    } catch (error) {
      throw new KeywardError("internal", "internal error", {
        cause: error,
        details: { uid, reason: "stored KMIP object cannot be read" },
      });
    }
  }

  async #remember(uid: string): Promise<void> {
    const key = PREFIX + uid;
    if (this.#journal === undefined || this.#journal.has(key)) return;
    this.#journal.set(key, await this.#barrier.get(key));
  }

  async put(object: KmipObject): Promise<void> {
    await this.#remember(object.uid);
    const stored: StoredObject = {
      uid: object.uid,
      objectType: object.objectType,
      attributes: object.attributes.map((attribute) => ({
        name: attribute.name,
        value: toBase64(attribute.value),
      })),
      ...(object.content === undefined ? {} : { content: toBase64(object.content) }),
    };
    try {
      await this.#barrier.put(PREFIX + object.uid, Buffer.from(JSON.stringify(stored), "utf8"));
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store a KMIP object", { cause: error });
    }
  }

  async delete(uid: string): Promise<void> {
    await this.#remember(uid);
    await this.#barrier.delete(PREFIX + uid);
  }

  /** Starts recording the values that later writes overwrite. */
  startJournal(): void {
    this.#journal = new Map();
  }

  /** Stops recording and drops the recorded values. */
  endJournal(): void {
    this.#journal = undefined;
  }

  /** Writes back every value recorded since startJournal, then stops recording. */
  async rollBack(): Promise<void> {
    const journal = this.#journal;
    this.#journal = undefined;
    if (journal === undefined) return;
    for (const [key, value] of journal) {
      if (value === undefined) await this.#barrier.delete(key);
      else await this.#barrier.put(key, value);
    }
  }

  /** Lists every object identifier in ascending order. */
  async list(): Promise<string[]> {
    const names = await this.#barrier.list(PREFIX);
    return names.filter((name) => !name.endsWith("/"));
  }

  /** Runs `work` after every earlier `exclusive` work has finished. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#lock.run("store", work);
  }
}
