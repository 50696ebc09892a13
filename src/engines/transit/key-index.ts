import { KeywardError } from "../../errors.ts";
import type { ManagedKey } from "../../keys/types.ts";
import type { StorageReader, StorageWriter } from "../../storage/storage.ts";

/**
 * The secondary indexes of a transit mount, kept behind the barrier beside
 * the keys:
 *
 * - `<mount>/index/rotation/<time>/<name>`: the time at which the key's
 *   automatic rotation becomes due, for keys that will become due without
 *   another change (see `nextRotationTime`).
 * - `<mount>/index/deletion/<time>/<name>`: the key's scheduled deletion time.
 *
 * `<time>` is milliseconds since the Unix epoch, zero-padded to 16 digits,
 * so the storage's byte order is time order, and a range scan finds the
 * keys due before a time without reading any other key. Entries have empty
 * values. Every key write changes its entries in the same transaction
 * (`applyKeyChange`), so the indexes agree with the keys after a crash.
 */
export const KEY_INDEXES = ["rotation", "deletion"] as const;
export type KeyIndexName = (typeof KEY_INDEXES)[number];

/** Digits of an index entry's time. */
const TIME_DIGITS = 16;
const MAX_INDEX_TIME = 10 ** TIME_DIGITS - 1;
const EMPTY_VALUE = new Uint8Array(0);

/** Storage prefix of a mount's keys. */
export function keysPrefix(mount: string): string {
  return `${mount}/keys/`;
}

/** Storage prefix of one of a mount's indexes. */
export function indexPrefix(mount: string, index: KeyIndexName): string {
  return `${mount}/index/${index}/`;
}

/** Formats a time in milliseconds as an index entry's time, clamped to the 16-digit range. */
export function formatIndexTime(milliseconds: number): string {
  const clamped = Math.min(Math.max(Math.floor(milliseconds), 0), MAX_INDEX_TIME);
  return String(clamped).padStart(TIME_DIGITS, "0");
}

/** An index entry, `<time>/<name>` relative to the index's prefix, split into its parts. */
export interface IndexEntry {
  entry: string;
  /** Milliseconds since the Unix epoch. */
  time: number;
  name: string;
}

const ENTRY_PATTERN = /^(\d{16})\/([^/]+)$/;

/** Splits an index entry, or returns undefined when it is not of the form `<16 digits>/<name>`. */
export function parseIndexEntry(entry: string): IndexEntry | undefined {
  const match = ENTRY_PATTERN.exec(entry);
  if (match === null) return undefined;
  return { entry, time: Number(match[1]), name: match[2] as string };
}

/**
 * Returns when automatic rotation of `key` becomes due, in milliseconds, or
 * undefined when it never does unless the key changes first. A pre-active
 * key with an activation date is due once it is active and a period has
 * passed since its last rotation; other states than active and pre-active,
 * and keys scheduled for deletion, are never due. The sweep's check
 * (`isRotationDue`) holds exactly from this time on.
 */
export function nextRotationTime(key: ManagedKey): number | undefined {
  if (key.autoRotatePeriod <= 0 || key.deletionDate !== undefined) return undefined;
  const due = Date.parse(key.lastRotatedAt) + key.autoRotatePeriod * 1000;
  if (Number.isNaN(due)) return undefined;
  if (key.state === "active") return due;
  if (key.state === "pre-active" && key.activationDate !== undefined) {
    const activation = Date.parse(key.activationDate);
    return Number.isNaN(activation) ? undefined : Math.max(due, activation);
  }
  return undefined;
}

/** Returns the time of the key's scheduled deletion in milliseconds, or undefined when none is scheduled. */
export function deletionTime(key: ManagedKey): number | undefined {
  if (key.deletionDate === undefined) return undefined;
  const time = Date.parse(key.deletionDate);
  return Number.isNaN(time) ? undefined : time;
}

/** Returns the key's index entries as storage keys under `mount`. */
export function indexKeysOf(mount: string, key: ManagedKey): string[] {
  const keys: string[] = [];
  const rotation = nextRotationTime(key);
  if (rotation !== undefined) {
    keys.push(`${indexPrefix(mount, "rotation")}${formatIndexTime(rotation)}/${key.name}`);
  }
  const deletion = deletionTime(key);
  if (deletion !== undefined) {
    keys.push(`${indexPrefix(mount, "deletion")}${formatIndexTime(deletion)}/${key.name}`);
  }
  return keys;
}

/** A stored key as read inside a transaction: the parsed key and its JSON text. */
export interface StoredKey {
  key: ManagedKey;
  text: string;
}

/** Reads and parses key `name` through `reader`, or returns undefined when it does not exist. */
export async function readStoredKey(
  reader: StorageReader,
  mount: string,
  name: string,
): Promise<StoredKey | undefined> {
  const value = await reader.get(keysPrefix(mount) + name);
  if (value === undefined) return undefined;
  const text = Buffer.from(value).toString("utf8");
  try {
    return { key: JSON.parse(text) as ManagedKey, text };
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { key: name, reason: "stored key is not valid JSON" },
    });
  }
}

/**
 * Writes a key change and its index changes through `tx`, which should be a
 * transaction's writer so that both commit together. `previous` is the key
 * as stored now (read through the same transaction), `next` the key to
 * store, or undefined to delete the key. `text` is `next` as JSON when the
 * caller has it already. Entries both keys share are left as they are.
 */
export async function applyKeyChange(
  tx: StorageWriter,
  mount: string,
  name: string,
  previous: ManagedKey | undefined,
  next: ManagedKey | undefined,
  text?: string,
): Promise<void> {
  const before = previous === undefined ? [] : indexKeysOf(mount, previous);
  const after = next === undefined ? [] : indexKeysOf(mount, next);
  for (const entry of before) {
    if (!after.includes(entry)) await tx.delete(entry);
  }
  for (const entry of after) {
    if (!before.includes(entry)) await tx.put(entry, EMPTY_VALUE);
  }
  const path = keysPrefix(mount) + name;
  if (next === undefined) await tx.delete(path);
  else await tx.put(path, Buffer.from(text ?? JSON.stringify(next), "utf8"));
}

/**
 * Makes the index entries of key `name` match the stored key: deletes
 * `staleKeys` (index storage keys that no longer match it) and writes the
 * key's own entries again. Used when a sweep finds an entry that does not
 * match its key.
 */
export async function repairIndexEntries(
  tx: StorageWriter,
  mount: string,
  name: string,
  staleKeys: readonly string[],
): Promise<void> {
  const stored = await readStoredKey(tx, mount, name);
  const current = stored === undefined ? [] : indexKeysOf(mount, stored.key);
  for (const stale of staleKeys) {
    if (!current.includes(stale)) await tx.delete(stale);
  }
  for (const entry of current) await tx.put(entry, EMPTY_VALUE);
}

/** Writes the index entries of a stored key, for the rebuild; entries already present are written again. */
export async function writeIndexEntries(
  tx: StorageWriter,
  mount: string,
  key: ManagedKey,
): Promise<void> {
  for (const entry of indexKeysOf(mount, key)) await tx.put(entry, EMPTY_VALUE);
}
