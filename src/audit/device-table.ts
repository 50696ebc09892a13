/**
 * Changes to the stored device table that every node shares. Each change
 * reads and writes the table in one barrier transaction, so changes that
 * two nodes make at once are both kept.
 */

import { resolve } from "node:path";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { canonicalJson } from "./chain.ts";
import { loadDeviceTable, saveDeviceTable } from "./persistence.ts";
import type { DeviceEntry } from "./types.ts";

/**
 * Returns the stored device table, storing the one `create` returns when
 * none exists yet, so two nodes unsealing a new installation at once create
 * one table.
 */
export async function loadOrCreateDeviceTable(
  barrier: Barrier,
  create: () => DeviceEntry[],
): Promise<DeviceEntry[]> {
  return barrier.transaction(async (tx) => {
    const stored = await loadDeviceTable(tx);
    if (stored !== undefined) return stored;
    const created = create();
    await saveDeviceTable(tx, created);
    return created;
  });
}

/** Appends `entry` to the stored table, after `rejectConflicts` against the stored entries. */
export async function addDeviceEntry(barrier: Barrier, entry: DeviceEntry): Promise<void> {
  await barrier.transaction(async (tx) => {
    const current = (await loadDeviceTable(tx)) ?? [];
    rejectConflicts(entry, current);
    await saveDeviceTable(tx, [...current, entry]);
  });
}

/** Removes the entry at `path` from the stored table. Returns false when the table had none. */
export async function removeDeviceEntry(barrier: Barrier, path: string): Promise<boolean> {
  return barrier.transaction(async (tx) => {
    const current = (await loadDeviceTable(tx)) ?? [];
    const remaining = current.filter((entry) => entry.path !== path);
    if (remaining.length === current.length) return false;
    await saveDeviceTable(tx, remaining);
    return true;
  });
}

/**
 * Rejects a device whose path one of `entries` already uses, and a file
 * device whose file one of them writes, since two chains in one file
 * cannot verify.
 */
export function rejectConflicts(entry: DeviceEntry, entries: DeviceEntry[]): void {
  const target = entry.type === "file" ? resolve(entry.options.file_path ?? "") : undefined;
  for (const other of entries) {
    if (other.path === entry.path) {
      throw new KeywardError(
        "already_exists",
        `an audit device is already enabled at "${entry.path}/"`,
        { field: "path" },
      );
    }
    if (
      target !== undefined &&
      other.type === "file" &&
      resolve(other.options.file_path ?? "") === target
    ) {
      throw new KeywardError(
        "invalid_field",
        `the audit device at "${other.path}/" already writes to "${target}"`,
        { field: "options.file_path" },
      );
    }
  }
}

/** Reports whether two device table entries describe the same enabling of a device. */
export function sameDevice(a: DeviceEntry, b: DeviceEntry): boolean {
  return (
    a.type === b.type &&
    a.createdAt === b.createdAt &&
    a.description === b.description &&
    canonicalJson(a.options) === canonicalJson(b.options)
  );
}
