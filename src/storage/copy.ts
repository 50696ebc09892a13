import { KeywardError } from "../errors.ts";
import type { Storage, StorageReader } from "./storage.ts";

/** Entries written per destination transaction, so one commit covers many writes. */
const COPY_BATCH_SIZE = 256;

export interface CopyStorageOptions {
  /** Deletes every entry of a non-empty destination before copying, instead of rejecting it. */
  force?: boolean;
}

export interface CopyStorageResult {
  /** Entries written to the destination. */
  copied: number;
  /** Entries found equal, key and value byte for byte, when both storages were read again. */
  verified: number;
  /** Entries deleted from the destination first, with `force`. */
  deleted: number;
}

/**
 * Yields every key under `prefix` (empty or ending with `/`) in ascending
 * byte order, walking `list` folder by folder. Memory grows with the depth
 * of the tree and the width of one folder, not with the number of keys.
 */
export async function* walkKeys(storage: StorageReader, prefix = ""): AsyncGenerator<string> {
  for (const child of await storage.list(prefix)) {
    if (child.endsWith("/")) yield* walkKeys(storage, prefix + child);
    else yield prefix + child;
  }
}

async function hasEntries(storage: StorageReader): Promise<boolean> {
  return (await storage.list("")).length > 0;
}

/** Throws `invalid_state` when a copy's source is empty, which most likely means a wrong location. */
export async function assertSourceHasEntries(source: StorageReader): Promise<void> {
  if (!(await hasEntries(source))) {
    throw new KeywardError(
      "invalid_state",
      "the source storage contains no entries; check the source location",
    );
  }
}

/** Deletes every entry, a batch of keys per transaction, and returns how many it deleted. */
async function deleteAll(storage: Storage): Promise<number> {
  let deleted = 0;
  for (;;) {
    const batch: string[] = [];
    for await (const key of walkKeys(storage)) {
      batch.push(key);
      if (batch.length === COPY_BATCH_SIZE) break;
    }
    if (batch.length === 0) return deleted;
    await storage.transaction(async (tx) => {
      for (const key of batch) await tx.delete(key);
    });
    deleted += batch.length;
  }
}

async function readValue(storage: StorageReader, key: string): Promise<Uint8Array> {
  const value = await storage.get(key);
  if (value === undefined) {
    throw new KeywardError(
      "invalid_state",
      `source entry ${JSON.stringify(key)} disappeared during the copy; stop every server that uses the source and run the copy again`,
    );
  }
  return value;
}

/** Writes the entries in one destination transaction. */
async function writeBatch(destination: Storage, batch: [string, Uint8Array][]): Promise<void> {
  await destination.transaction(async (tx) => {
    for (const [key, value] of batch) await tx.put(key, value);
  });
}

function mismatch(reason: string): KeywardError {
  return new KeywardError(
    "invalid_state",
    `verification failed: ${reason}; the source may have changed during the copy (stop every server that uses it) and the destination is incomplete`,
  );
}

/**
 * Reads both storages again in key order and compares every key and value
 * byte for byte. Returns the number of entries compared; throws
 * `invalid_state` at the first difference.
 */
async function verifyCopy(source: StorageReader, destination: StorageReader): Promise<number> {
  const sourceKeys = walkKeys(source);
  const destinationKeys = walkKeys(destination);
  let verified = 0;
  for (;;) {
    const [fromSource, fromDestination] = await Promise.all([
      sourceKeys.next(),
      destinationKeys.next(),
    ]);
    if (fromSource.done && fromDestination.done) return verified;
    if (fromSource.done || fromDestination.done || fromSource.value !== fromDestination.value) {
      const sourceKey = fromSource.done ? "no more entries" : JSON.stringify(fromSource.value);
      const destinationKey = fromDestination.done
        ? "no more entries"
        : JSON.stringify(fromDestination.value);
      throw mismatch(
        `after ${verified} equal entries the source has ${sourceKey} and the destination ${destinationKey}`,
      );
    }
    const key = fromSource.value;
    const [sourceValue, destinationValue] = await Promise.all([
      source.get(key),
      destination.get(key),
    ]);
    if (
      sourceValue === undefined ||
      destinationValue === undefined ||
      !Buffer.from(sourceValue).equals(Buffer.from(destinationValue))
    ) {
      throw mismatch(`the values of ${JSON.stringify(key)} differ`);
    }
    verified += 1;
  }
}

/**
 * Copies every entry of `source` into `destination` as raw bytes, then
 * verifies the copy: both storages are read again and must hold the same
 * keys with byte-identical values. Values stay encrypted by the barrier, so
 * neither storage needs to be unsealed.
 *
 * Throws `invalid_state` when the source is empty (most likely a wrong
 * location), when the destination holds entries and `force` is not set,
 * and when verification finds a difference. The copy reads the source
 * outside a transaction, so no server may write to it meanwhile; a change
 * made during the copy fails verification.
 */
export async function copyStorage(
  source: Storage,
  destination: Storage,
  options: CopyStorageOptions = {},
): Promise<CopyStorageResult> {
  await assertSourceHasEntries(source);
  let deleted = 0;
  if (await hasEntries(destination)) {
    if (!options.force) {
      throw new KeywardError(
        "invalid_state",
        "the destination storage is not empty; choose an empty destination, or pass --force to delete its entries first",
      );
    }
    deleted = await deleteAll(destination);
  }

  let copied = 0;
  let batch: [string, Uint8Array][] = [];
  for await (const key of walkKeys(source)) {
    batch.push([key, await readValue(source, key)]);
    if (batch.length === COPY_BATCH_SIZE) {
      await writeBatch(destination, batch);
      copied += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) {
    await writeBatch(destination, batch);
    copied += batch.length;
  }

  const verified = await verifyCopy(source, destination);
  if (verified !== copied) {
    throw mismatch(`${copied} entries were copied but ${verified} are present in both storages`);
  }
  return { copied, verified, deleted };
}
