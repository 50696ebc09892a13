/**
 * KMIP managed objects as JSON values behind Keyward's barrier, at
 * `kmip/objects/<uid>`. Attribute values and the object's content (the
 * Symmetric Key, Private Key, Secret Data or other structure) are kept as
 * base64 TTLV, so every KMIP type survives a round trip through JSON.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import { validateKey } from "../../storage/keys.ts";
import type { KmipItem } from "../item.ts";
import { decodeTtlv, encodeTtlv } from "../ttlv.ts";
import type { KmipAttribute } from "./attributes.ts";
import { KmipOperationError } from "./errors.ts";
import type { KmipManagedKeyScope, KmipManagedKeys } from "./managed-keys.ts";
import {
  buildNameIndex,
  checkNameClaims,
  encodeName,
  type NameSet,
  nameIndexBuilt,
  namesOf,
  readNameEntries,
  storedNamesOf,
  writeNameChanges,
} from "./name-index.ts";
import { copyObject, KmipObjectCache } from "./object-cache.ts";
import { addVersionObjects, type VersionObjectsResult } from "./transit-versions.ts";

/** A managed object: its identifier, type, attributes and content. */
export interface KmipObject {
  readonly uid: string;
  /** The Object Type as its normalized name ("SymmetricKey", "PrivateKey"). */
  readonly objectType: string;
  readonly attributes: readonly KmipAttribute[];
  /** The object structure (such as Symmetric Key); absent once destroyed. */
  readonly content?: KmipItem;
  /** The HSM objects holding the key material, for a key generated in the HSM (see hsm-objects.ts). */
  readonly hsmObject?: KmipHsmObjectRef;
  /**
   * The managed key holding the key material, for a key stored as a
   * transit key (see managed-keys.ts). Its record's content then has a Key
   * Block without Key Value.
   */
  readonly managedKey?: KmipManagedKeyRef;
}

/** The location of a managed-key object's key material: one version of a transit key. */
export interface KmipManagedKeyRef {
  readonly mount: string;
  /** The transit key's name: the Unique Identifier of the object that made it. */
  readonly name: string;
  readonly version: number;
  /**
   * True when the object keeps its State in its record instead of sharing
   * the managed key's: an object that a Re-key replaced.
   */
  readonly ownState?: boolean;
  /**
   * The creation time of the version, as the managed key records it. A
   * managed key whose version has another time (or none) is not the one
   * the object was made with: the version was trimmed, or the key was
   * deleted and a new one took its name. Absent in records from before
   * this field.
   */
  readonly createdAt?: string;
}

/** The location of an HSM-held object's key: the CKA_LABEL and CKA_ID (hex) of its token objects. */
export interface KmipHsmObjectRef {
  readonly label: string;
  readonly id: string;
  /** For a private key, its public key as base64 DER SubjectPublicKeyInfo. */
  readonly publicKey?: string;
}

/**
 * The reads and writes of one `exclusive` work, such as one request
 * message. Reads see the writes of this work and of the works before it in
 * the same group. Writes are staged, and `exclusive` resolves only once
 * they are committed.
 */
export interface KmipTransaction {
  /** Returns a fresh unique identifier (see `KmipObjectStore.newUid`). */
  newUid(): string;
  find(uid: string): Promise<KmipObject | undefined>;
  /** Lists every object identifier in ascending order. */
  list(): Promise<string[]>;
  /**
   * Lists in ascending order the identifiers of the objects that have the
   * Name `name` (a Name attribute value), destroyed objects included. It
   * reads the Name index (see name-index.ts), not the objects.
   */
  named(name: KmipItem): Promise<string[]>;
  /**
   * Stages a write of the object, replacing any object with its
   * identifier. With `durable: false` the write may be lost to a power
   * failure (not to a crash of Keyward): a group whose writes are all such
   * commits without waiting for the disk. Get's change of Fresh to false
   * is one.
   */
  put(object: KmipObject, options?: { durable?: boolean }): Promise<void>;
  /** Stages the removal of an object; removing a missing object is not an error. */
  delete(uid: string): Promise<void>;
  /** Starts recording the state that later writes of this work replace. */
  startJournal(): void;
  /** Stops recording and drops the recorded state. */
  endJournal(): void;
  /** Puts back the state recorded since `startJournal`, then stops recording. */
  rollBack(): Promise<void>;
}

export interface KmipObjectStoreOptions {
  /** Decoded objects kept in memory; `DEFAULT_CACHE_ENTRIES` when absent. */
  cacheEntries?: number;
  /** Stored JSON size of the objects kept in memory, in bytes; `DEFAULT_CACHE_BYTES` when absent. */
  cacheBytes?: number;
  /**
   * Keeps the key material of new AES keys and RSA and EC key pairs in the
   * managed keys of a transit mount (see managed-keys.ts). Without it,
   * every object's record contains its own material.
   */
  managedKeys?: KmipManagedKeys;
  /** Receives a line for each object made for a version that transit added; silent when absent. */
  logger?: Pick<Logger, "info" | "warn">;
}

interface StoredObject {
  uid: string;
  objectType: string;
  attributes: { name: string; value: string }[];
  content?: string;
  hsmObject?: KmipHsmObjectRef;
  managedKey?: KmipManagedKeyRef;
}

/** Storage prefix of every KMIP object, followed by its unique identifier. */
export const KMIP_OBJECTS_PREFIX = "kmip/objects/";
const PREFIX = KMIP_OBJECTS_PREFIX;

/**
 * The maximum number of writes one commit transaction holds, where an
 * object write counts one plus one per Name index entry it may add. It
 * stays below the barrier's headroom of 1,000 encryptions per transaction.
 */
const MAX_COMMIT_WRITES = 900;

/**
 * The most Names one object may have. Each has an index entry written in
 * the object's commit, so the cap keeps one object's commit inside the
 * barrier's headroom of encryptions per transaction.
 */
export const MAX_NAMES_PER_OBJECT = 64;

/** The staged state of an object: the object, or null once deleted. */
type Staged = KmipObject | null;

/** A journal entry for an object that had no staged state when the journal recorded it. */
const NOT_STAGED = Symbol("not staged");

interface QueuedWork {
  run: (tx: KmipTransaction) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Resolves after the I/O callbacks of the current event-loop turn have run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The stored form of scalar attribute values encoded before. Such items
 * cannot change (their fields are read-only and their values primitives),
 * and `copyObject` shares them between copies, so an object read from the
 * cache and written back (Get's change of Fresh) encodes only the values
 * that changed. Byte strings and structures are left out, because their
 * contents can be changed in place.
 */
const ENCODED_VALUES = new WeakMap<KmipItem, string>();

function toBase64(item: KmipItem): string {
  if (item.type === "Structure" || item.type === "ByteString") {
    return encodeTtlv(item).toString("base64");
  }
  let text = ENCODED_VALUES.get(item);
  if (text === undefined) {
    text = encodeTtlv(item).toString("base64");
    ENCODED_VALUES.set(item, text);
  }
  return text;
}

function fromBase64(text: string): KmipItem {
  const item = decodeTtlv(Buffer.from(text, "base64"));
  if (item.type !== "Structure" && item.type !== "ByteString") ENCODED_VALUES.set(item, text);
  return item;
}

function encodeObject(object: KmipObject): string {
  const stored: StoredObject = {
    uid: object.uid,
    objectType: object.objectType,
    attributes: object.attributes.map((attribute) => ({
      name: attribute.name,
      value: toBase64(attribute.value),
    })),
    ...(object.content === undefined ? {} : { content: toBase64(object.content) }),
    ...(object.hsmObject === undefined ? {} : { hsmObject: object.hsmObject }),
    ...(object.managedKey === undefined ? {} : { managedKey: object.managedKey }),
  };
  return JSON.stringify(stored);
}

function decodeObject(uid: string, value: Uint8Array): KmipObject {
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
      ...(stored.hsmObject === undefined ? {} : { hsmObject: { ...stored.hsmObject } }),
      ...(stored.managedKey === undefined ? {} : { managedKey: { ...stored.managedKey } }),
    };
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { uid, reason: "stored KMIP object cannot be read" },
    });
  }
}

/**
 * The store of KMIP objects.
 *
 * Every read and write runs inside `exclusive`, one work at a time, so
 * request messages never interleave and cannot lose each other's writes.
 * Works queued while a group runs join it, and a group that writes waits
 * for the rest of the event-loop turn before its commit, so the works of
 * requests that arrived together join it as well. The works of a group
 * run one after another, and their writes are committed together in one
 * barrier transaction (group commit). So concurrent clients share one
 * synced commit instead of paying one each. Each work's promise resolves
 * only after that commit. When the commit
 * fails, every work of the group fails with its error, because later works
 * may have read what earlier ones wrote. A work that throws leaves none of
 * its writes behind.
 *
 * Decoded objects are cached in memory, bounded by count and size. The
 * cache contains committed state only and assumes that this process makes
 * every change to `kmip/objects/`. When another node changes an object,
 * call `forget(uid)`, or `clear()` when the changes are unknown. While the
 * barrier is sealed, reads fail and the cache is dropped.
 *
 * Each commit also changes the Name index (see name-index.ts) to match the
 * objects it writes, in the same transactions.
 */
export class KmipObjectStore {
  readonly #barrier: Barrier;
  readonly #cache: KmipObjectCache;
  readonly #queue: QueuedWork[] = [];
  #draining = false;
  /** Writes of the running group, by identifier; undefined between groups. */
  #staged: Map<string, Staged> | undefined;
  /** True once the running group staged a write that must survive a power failure. */
  #groupDurable = false;
  /** Staged state of each object before the running work first wrote it, to drop a failed work's writes. */
  #workUndo = new Map<string, Staged | typeof NOT_STAGED>();
  /** Staged state of each object before the journaled batch first wrote it. */
  #journal: Map<string, Staged | typeof NOT_STAGED> | undefined;
  #lastMillis = 0;
  #sequence = 0;
  readonly #transaction: KmipTransaction;
  readonly #managed: KmipManagedKeys | undefined;
  /** The managed-key changes of the journaled batch, which `rollBack` undoes with its records. */
  #managedJournal: KmipManagedKeyScope | undefined;
  /** True while the objects of transit's versions are being made, so their reads do not start another reconcile. */
  #reconciling = false;
  /** True once the Name index is known to contain every object's Names (see name-index.ts). */
  #nameIndexReady = false;
  /**
   * The committed index entries that works of the running group read, as
   * the identifiers listed under each Name digest, which the commit checks
   * again (see `checkNameClaims`).
   */
  #nameReads = new Map<string, string[]>();
  /** The Names of staged objects, computed once per staged object. */
  readonly #stagedNames = new WeakMap<KmipObject, NameSet>();
  readonly #logger: Pick<Logger, "info" | "warn"> | undefined;
  /**
   * The identifiers that `newUid` gave the works of the running group.
   * Each is a fresh UUID version 7, so no object is stored under it before
   * the group's commit. The first write of such an object and the commit
   * therefore skip reading its stored record.
   */
  #issuedUids = new Set<string>();

  constructor(barrier: Barrier, options: KmipObjectStoreOptions = {}) {
    this.#barrier = barrier;
    this.#cache = new KmipObjectCache(options.cacheEntries, options.cacheBytes);
    const managed = options.managedKeys;
    this.#managed = managed;
    this.#logger = options.logger;
    // With managed keys, reads see the material and State of the managed
    // key, and writes move State changes to it and store the record without
    // the material. Managed keys are written at once, so Undo, a failed
    // work and a failed commit put their earlier values back.
    const find = async (uid: string) => {
      const stored = await this.#find(uid);
      if (stored === undefined || managed === undefined) return stored;
      const inspected = await managed.inspect(stored);
      const ref = stored.managedKey;
      if (!inspected.newVersions || this.#reconciling || ref === undefined) return inspected.object;
      // Transit added versions that no object shows yet: their objects are
      // made in this work, and the object is read again with its new Link.
      await this.#addVersionObjects(ref.mount, ref.name);
      const updated = await this.#find(uid);
      return updated === undefined ? undefined : managed.view(updated);
    };
    const put = async (object: KmipObject, options: { durable?: boolean } = {}) => {
      const names = object.attributes.filter((attribute) => attribute.name === "Name").length;
      if (names > MAX_NAMES_PER_OBJECT) {
        throw new KmipOperationError(
          "InvalidField",
          `an object may have at most ${MAX_NAMES_PER_OBJECT} Name attributes, not ${names}`,
        );
      }
      const durable = options.durable !== false;
      if (durable) this.#groupDurable = true;
      let record = object;
      if (managed !== undefined) {
        const stored = this.#isUnstored(object.uid) ? undefined : await this.#find(object.uid);
        const previous = stored === undefined ? undefined : await managed.view(stored, false);
        record = await managed.record(object, previous, find, durable);
      }
      this.#stage(record.uid, copyObject(record));
    };
    this.#transaction = {
      newUid: () => {
        const uid = this.newUid();
        this.#issuedUids.add(uid);
        return uid;
      },
      find,
      list: () => this.#list(),
      named: (name) => this.#named(name),
      put,
      delete: async (uid) => {
        this.#groupDurable = true;
        this.#stage(uid, null);
      },
      startJournal: () => {
        this.#journal = new Map();
        this.#closeManagedJournal();
        this.#managedJournal = managed?.open();
      },
      endJournal: () => {
        this.#journal = undefined;
        this.#closeManagedJournal();
      },
      rollBack: async () => this.#rollBack(),
    };
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

  /**
   * Runs `work` after every earlier work has finished, in the next group,
   * and resolves with its result once the group's writes are committed.
   */
  exclusive<T>(work: (tx: KmipTransaction) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#draining) {
        this.#draining = true;
        queueMicrotask(() => void this.#drain());
      }
    });
  }

  /** Reads one object as its own work. */
  find(uid: string): Promise<KmipObject | undefined> {
    return this.exclusive((tx) => tx.find(uid));
  }

  /** Lists every object identifier in ascending order, as its own work. */
  list(): Promise<string[]> {
    return this.exclusive((tx) => tx.list());
  }

  /** Stores an object as its own work; resolves once it is committed. */
  put(object: KmipObject): Promise<void> {
    return this.exclusive((tx) => tx.put(object));
  }

  /** Removes an object as its own work; resolves once the removal is committed. */
  delete(uid: string): Promise<void> {
    return this.exclusive((tx) => tx.delete(uid));
  }

  /**
   * Makes the objects of the versions that transit added to managed key
   * `name` of transit mount `mount` (see transit-versions.ts), as its own
   * work. `found` is false when no object has the key's name, so the key
   * may be an orphan of an interrupted request.
   */
  addVersionObjects(mount: string, name: string): Promise<VersionObjectsResult> {
    return this.exclusive(() => this.#addVersionObjects(mount, name));
  }

  /**
   * Adds the Name index entries of objects stored before the index
   * existed, as its own work, unless the stored marker shows that this was
   * done. The first lookup by Name does it too, so calling this moves the
   * cost to a chosen time, such as start-up.
   */
  buildNameIndex(): Promise<void> {
    return this.exclusive(() => this.#ensureNameIndex());
  }

  /** Drops one object from the cache, for a change that another node made. */
  forget(uid: string): void {
    this.#cache.delete(uid);
  }

  /** Drops every cached object: at seal, or when another node's changes are unknown. */
  clear(): void {
    this.#cache.clear();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const staged = new Map<string, Staged>();
      this.#staged = staged;
      const issued = new Set<string>();
      this.#issuedUids = issued;
      this.#groupDurable = false;
      this.#nameReads = new Map();
      const managedScope = this.#managed?.open();
      const group: { work: QueuedWork; outcome: Outcome }[] = [];
      let waited = false;
      for (;;) {
        let work = this.#queue.shift();
        while (work !== undefined) {
          group.push({ work, outcome: await this.#run(work) });
          work = this.#writeCount(staged) < MAX_COMMIT_WRITES ? this.#queue.shift() : undefined;
        }
        // A group without writes ends at once. One with writes first waits
        // for the rest of this event-loop turn, so that the works of
        // requests that arrived with it join the commit.
        if (staged.size === 0 || this.#writeCount(staged) >= MAX_COMMIT_WRITES || waited) break;
        await nextTurn();
        waited = true;
      }
      this.#staged = undefined;
      let failure: { error: unknown } | undefined;
      try {
        await this.#commit(staged, this.#groupDurable, issued);
      } catch (error) {
        failure = { error };
      }
      this.#nameReads = new Map();
      if (managedScope !== undefined) {
        // The records of the group are not stored, so neither are its managed-key changes.
        if (failure !== undefined) await this.#revertManaged(managedScope);
        else this.#managed?.close(managedScope);
      }
      for (const { work, outcome } of group) {
        if (!outcome.ok) work.reject(outcome.error);
        else if (failure !== undefined) work.reject(failure.error);
        else work.resolve(outcome.value);
      }
    }
    this.#draining = false;
  }

  /** Runs one work of the running group; a work that throws has its staged writes dropped. */
  async #run(work: QueuedWork): Promise<Outcome> {
    this.#workUndo = new Map();
    this.#journal = undefined;
    const managedScope = this.#managed?.open();
    this.#managed?.beginWork();
    try {
      const value = await work.run(this.#transaction);
      if (managedScope !== undefined) this.#managed?.close(managedScope);
      return { ok: true, value };
    } catch (error) {
      this.#restore(this.#workUndo);
      if (managedScope !== undefined) await this.#revertManaged(managedScope);
      return { ok: false, error };
    } finally {
      this.#journal = undefined;
      this.#closeManagedJournal();
    }
  }

  /** Makes the objects of transit's versions inside the running work (see `addVersionObjects`). */
  async #addVersionObjects(mount: string, name: string): Promise<VersionObjectsResult> {
    const managed = this.#managed;
    if (managed === undefined || this.#reconciling) return { found: true, added: [] };
    this.#reconciling = true;
    const before = new Map<string, Staged | typeof NOT_STAGED>();
    try {
      const result = await addVersionObjects(
        {
          findStored: (uid) => this.#find(uid),
          put: (object) => {
            const staged = this.#staged;
            if (staged !== undefined && !before.has(object.uid)) {
              before.set(
                object.uid,
                staged.has(object.uid) ? (staged.get(object.uid) as Staged) : NOT_STAGED,
              );
            }
            return this.#transaction.put(object);
          },
        },
        managed,
        mount,
        name,
      );
      if (result.added.length > 0) {
        this.#logger?.info(
          { mount, key: name, objects: result.added },
          "made KMIP objects for the versions that transit added to a managed key",
        );
      }
      return result;
    } catch (error) {
      // When the KMIP rules reject an object, the key stays as it was and
      // the read that started the reconcile goes on. Storage errors fail the work.
      if (!(error instanceof KmipOperationError)) throw error;
      this.#restore(before);
      this.#logger?.warn(
        { mount, key: name, err: error },
        "failed to make KMIP objects for the versions that transit added to a managed key",
      );
      return { found: true, added: [] };
    } finally {
      this.#reconciling = false;
    }
  }

  /**
   * Puts back the managed keys a scope recorded. A failure to do so is
   * not raised, because the caller is already reporting a failure.
   */
  async #revertManaged(scope: KmipManagedKeyScope): Promise<void> {
    try {
      await this.#revertLogged(scope);
    } catch (error) {
      // NOTE: the managed keys then keep the changes of a work whose records were dropped.
      this.#logger?.warn({ err: error }, "failed to undo the managed-key changes of a KMIP work");
    }
  }

  /** Puts back the managed keys a scope recorded, and logs those changed since by others. */
  async #revertLogged(scope: KmipManagedKeyScope): Promise<void> {
    const kept = (await this.#managed?.revert(scope)) ?? [];
    if (kept.length > 0) {
      this.#logger?.warn(
        { keys: kept },
        "kept managed keys that others changed during a KMIP work that was undone",
      );
    }
  }

  #closeManagedJournal(): void {
    if (this.#managedJournal !== undefined) this.#managed?.close(this.#managedJournal);
    this.#managedJournal = undefined;
  }

  /**
   * Writes the staged objects in transactions of at most
   * `MAX_COMMIT_WRITES` writes, and updates the cache once they are stored.
   * Each transaction also changes the Name index entries of its objects:
   * it reads each object's committed Names, so the entries follow what is
   * stored even when another node changed the object since this one read
   * it.
   */
  async #commit(
    staged: Map<string, Staged>,
    durable: boolean,
    issued: ReadonlySet<string>,
  ): Promise<void> {
    if (staged.size === 0) return;
    const writes = [...staged].map(([uid, object]) => ({
      uid,
      object,
      text: object === null ? undefined : encodeObject(object),
      names: object === null ? new Map<string, Buffer>() : this.#namesOfStaged(object),
    }));
    const written = new Set(staged.keys());
    // NOTE: a group with more writes than one transaction takes (one
    // message with hundreds of Creates) is committed in several, so a
    // failure can leave the earlier transactions stored.
    for (const chunk of commitChunks(writes)) {
      try {
        await this.#barrier.transaction(
          async (tx) => {
            const previous: NameSet[] = [];
            for (const write of chunk) {
              if (issued.has(write.uid)) {
                previous.push(new Map());
                continue;
              }
              const value = await tx.get(PREFIX + write.uid);
              previous.push(value === undefined ? new Map() : storedNamesOf(write.uid, value));
            }
            const added = chunk.flatMap((write, index) =>
              [...write.names.keys()].filter((digest) => !previous[index]!.has(digest)),
            );
            await checkNameClaims(tx, added, this.#nameReads, written);
            for (const [index, write] of chunk.entries()) {
              if (write.text === undefined) await tx.delete(PREFIX + write.uid);
              else await tx.put(PREFIX + write.uid, Buffer.from(write.text, "utf8"));
              await writeNameChanges(tx, write.uid, previous[index]!, write.names);
            }
          },
          { syncToDisk: durable },
        );
      } catch (error) {
        for (const write of writes) this.#cache.delete(write.uid);
        if (isKeywardError(error)) throw error;
        throw new KeywardError("storage_failure", "failed to store KMIP objects", {
          cause: error,
        });
      }
    }
    // The staged objects are copies that only the ended group could reach, so the cache takes them as they are.
    for (const write of writes) {
      if (write.object === null || write.text === undefined) this.#cache.delete(write.uid);
      else this.#cache.adopt(write.object, write.text.length);
    }
  }

  /** True for an identifier that `newUid` gave the running group and that no work of it has staged. */
  #isUnstored(uid: string): boolean {
    return this.#issuedUids.has(uid) && this.#staged?.has(uid) === false;
  }

  /** Returns the Names of a staged object, computed once per staged object. */
  #namesOfStaged(object: KmipObject): NameSet {
    let names = this.#stagedNames.get(object);
    if (names === undefined) {
      names = namesOf(object.attributes);
      this.#stagedNames.set(object, names);
    }
    return names;
  }

  /** Counts the writes that committing `staged` takes, as `MAX_COMMIT_WRITES` counts them. */
  #writeCount(staged: Map<string, Staged>): number {
    let count = 0;
    for (const object of staged.values()) {
      count += object === null ? 1 : 1 + this.#namesOfStaged(object).size;
    }
    return count;
  }

  /** Stores the index entries of objects stored before the Name index existed, unless the marker shows it was done. */
  async #ensureNameIndex(): Promise<void> {
    if (this.#nameIndexReady) return;
    if (!(await nameIndexBuilt(this.#barrier))) {
      await buildNameIndex(this.#barrier, PREFIX, this.#logger);
    }
    this.#nameIndexReady = true;
  }

  /** Lists the objects with the Name: the committed index entries, with the running group's staged writes applied. */
  async #named(name: KmipItem): Promise<string[]> {
    if (this.#barrier.sealed) {
      this.#cache.clear();
      throw sealedError();
    }
    await this.#ensureNameIndex();
    const { encoding, digest } = encodeName(name);
    const { holders, listed } = await readNameEntries(this.#barrier, encoding, digest);
    if (!this.#nameReads.has(digest)) this.#nameReads.set(digest, listed);
    const uids = new Set(holders);
    for (const [uid, object] of this.#staged ?? []) {
      const staged = object === null ? undefined : this.#namesOfStaged(object).get(digest);
      if (staged?.equals(encoding)) uids.add(uid);
      else uids.delete(uid);
    }
    return [...uids].sort();
  }

  async #find(uid: string): Promise<KmipObject | undefined> {
    // A Unique Identifier that cannot be a storage key (too long, a NUL) names no object.
    if (uid.length === 0 || uid.includes("/") || !isStorageKey(PREFIX + uid)) return undefined;
    const staged = this.#staged?.get(uid);
    if (staged !== undefined) return staged === null ? undefined : copyObject(staged);
    if (this.#barrier.sealed) {
      this.#cache.clear();
      throw sealedError();
    }
    const cached = this.#cache.get(uid);
    if (cached !== undefined) return cached;
    const generation = this.#cache.generation;
    const value = await this.#barrier.get(PREFIX + uid);
    if (value === undefined) return undefined;
    const object = decodeObject(uid, value);
    // A forget or clear during the read may mean that the value is already stale.
    if (this.#cache.generation === generation) this.#cache.set(object, value.length);
    return object;
  }

  async #list(): Promise<string[]> {
    const names = (await this.#barrier.list(PREFIX)).filter((name) => !name.endsWith("/"));
    const staged = this.#staged;
    if (staged === undefined || staged.size === 0) return names;
    const uids = new Set(names);
    for (const [uid, object] of staged) {
      if (object === null) uids.delete(uid);
      else uids.add(uid);
    }
    // Identifiers are lower-case hex and hyphens, so code-unit order is byte order.
    return [...uids].sort();
  }

  #stage(uid: string, object: Staged): void {
    const staged = this.#staged;
    if (staged === undefined) {
      throw new KeywardError("internal", "a KMIP object was written outside exclusive work");
    }
    const before = staged.has(uid) ? (staged.get(uid) as Staged) : NOT_STAGED;
    if (!this.#workUndo.has(uid)) this.#workUndo.set(uid, before);
    if (this.#journal !== undefined && !this.#journal.has(uid)) this.#journal.set(uid, before);
    staged.set(uid, object);
  }

  async #rollBack(): Promise<void> {
    const journal = this.#journal;
    this.#journal = undefined;
    if (journal !== undefined) this.#restore(journal);
    const managedJournal = this.#managedJournal;
    this.#managedJournal = undefined;
    if (managedJournal !== undefined) await this.#revertLogged(managedJournal);
  }

  /** Puts the recorded staged states back. */
  #restore(recorded: Map<string, Staged | typeof NOT_STAGED>): void {
    const staged = this.#staged;
    if (staged === undefined) return;
    for (const [uid, before] of recorded) {
      if (before === NOT_STAGED) staged.delete(uid);
      else staged.set(uid, before);
    }
  }
}

/** Returns true when `key` passes the storage's key rules. */
function isStorageKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * Splits a commit's writes into transactions of at most
 * `MAX_COMMIT_WRITES` writes, counting one per object and one per Name it
 * has. A single object with more Names than that gets a transaction of
 * its own.
 */
function commitChunks<T extends { names: NameSet }>(writes: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let count = 0;
  for (const write of writes) {
    const cost = 1 + write.names.size;
    if (chunk.length > 0 && count + cost > MAX_COMMIT_WRITES) {
      chunks.push(chunk);
      chunk = [];
      count = 0;
    }
    chunk.push(write);
    count += cost;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
