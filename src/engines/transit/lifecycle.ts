import { isKeywardError, KeywardError } from "../../errors.ts";
import { hsmObjectsOf, rotateKey, rotationDue } from "../../keys/index.ts";
import type { ManagedKey } from "../../keys/types.ts";
import type { TransitHsm } from "./hsm/access.ts";
import { destroyHsmObjects, discardUnused, generateHsmVersion } from "./hsm/operations.ts";
import { type KeyIndexState, yieldToEventLoop } from "./index-rebuild.ts";
import { indexPrefix, type KeyIndexName, parseIndexEntry } from "./key-index.ts";
import type { KeyBatchChange, KeyStore } from "./store.ts";
import type { Logger } from "./types.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Keys changed per transaction by a sweep. Each commit of SQLite syncs to
 * the disk, so one key per transaction would bound a sweep to the disk's
 * sync rate, while a large batch would hold the database longer and delay
 * requests. Requests run between two batches.
 */
export const SWEEP_BATCH_SIZE = 100;

/** Changed key names a sweep's summary keeps for the log; the count covers the rest. */
const MAX_SUMMARY_NAMES = 100;

/** Returns the time a deletion scheduled at `now` with a window of `days` runs. */
export function deletionDateAfter(now: Date, days: number): string {
  return new Date(now.getTime() + days * DAY_MS).toISOString();
}

/**
 * True when the key's automatic rotation is due at `now`: it has a rotation
 * period, its last rotation was at least one period ago, it is active, and
 * it is not scheduled for deletion. A rotation missed while the server was
 * down is therefore due at the next check, once (not once per missed period).
 */
export function isRotationDue(key: ManagedKey, now: Date): boolean {
  return key.deletionDate === undefined && rotationDue(key, now);
}

/** True when the key's scheduled deletion time has come. */
export function isDeletionDue(key: ManagedKey, now: Date): boolean {
  return key.deletionDate !== undefined && Date.parse(key.deletionDate) <= now.getTime();
}

/** Errors that stop a whole sweep: nothing else can succeed while the barrier is closed. */
function stopsSweep(error: unknown): boolean {
  return isKeywardError(error) && (error.code === "sealed" || error.code === "not_initialized");
}

interface SweepContext {
  store: KeyStore;
  indexes: KeyIndexState;
  logger: Logger;
  mount: string;
  /** The HSM of HSM-held keys; absent when the server has none. */
  hsm?: TransitHsm;
  /** Called with the name of each key that a rotation sweep rotated, once the key is stored. */
  onRotated?: (names: readonly string[]) => void;
}

/** The outcome of one sweep over a mount. */
export interface SweepSummary {
  /** Keys rotated or deleted. */
  count: number;
  /** The first changed key names, in the index's time order (at most 100). */
  names: string[];
  /** Keys whose change failed; each failure is logged with the key's name. */
  failed: number;
}

/** One kind of sweep: which index finds the keys, and what is done to each. */
interface SweepKind {
  /** The job's name in log lines. */
  job: string;
  index: KeyIndexName;
  due: (key: ManagedKey, now: Date) => boolean;
  /** Computes the key to store, or undefined to delete it. Throws to skip the key. */
  change: (key: ManagedKey, now: Date) => Promise<ManagedKey | undefined>;
  /** Logs one change once it is stored. */
  logChange: (key: ManagedKey, next: ManagedKey | undefined) => void;
  /**
   * Finishes a change after its batch was written or skipped: the HSM
   * objects it made or dropped. Logs its own failures and never throws.
   */
  settle?: (change: PlannedChange, written: boolean) => Promise<void>;
}

/**
 * Applies a sweep to every key whose index entry is due at `now`. The index
 * is read page by page in time order, so only due entries are read. Each
 * page of up to SWEEP_BATCH_SIZE keys is locked, re-checked and written in
 * one transaction. The sweep yields to the event loop after each key and
 * each batch, so requests run in between.
 * When a batch's transaction fails, its keys are written one by one, so one
 * bad key does not hold back the others. A failure on one key is logged and
 * the sweep goes on; a sealed barrier ends it with the error.
 */
async function sweep(context: SweepContext, now: Date, kind: SweepKind): Promise<SweepSummary> {
  await context.indexes.ensureComplete();
  const summary: SweepSummary = { count: 0, names: [], failed: 0 };
  let after: string | undefined;
  for (;;) {
    const page = await context.store.scanIndex(kind.index, after, SWEEP_BATCH_SIZE);
    const due = [];
    for (const entry of page) {
      const parsed = parseIndexEntry(entry);
      if (parsed !== undefined && parsed.time > now.getTime()) break;
      due.push(entry);
    }
    if (due.length > 0) {
      await sweepBatch(context, now, kind, due, summary);
      after = due[due.length - 1];
    }
    if (due.length < SWEEP_BATCH_SIZE) return summary;
    await yieldToEventLoop();
  }
}

/** A change computed for one key of a batch, with the key it was computed from. */
interface PlannedChange extends KeyBatchChange {
  key: ManagedKey;
}

/** Locks, re-checks and changes the keys of one page of due index entries. */
async function sweepBatch(
  context: SweepContext,
  now: Date,
  kind: SweepKind,
  entries: readonly string[],
  summary: SweepSummary,
): Promise<void> {
  const prefix = indexPrefix(context.mount, kind.index);
  const byName = new Map<string, string[]>();
  for (const entry of entries) {
    const name = parseIndexEntry(entry)?.name;
    if (name === undefined) {
      context.logger.error(
        { mount: context.mount, job: kind.job, entry },
        "malformed key index entry skipped",
      );
      continue;
    }
    byName.set(name, [...(byName.get(name) ?? []), prefix + entry]);
  }

  await context.store.withLocks([...byName.keys()], async () => {
    const planned: PlannedChange[] = [];
    for (const [name, indexKeys] of byName) {
      try {
        const stored = await context.store.load(name);
        if (stored === undefined || !kind.due(stored.key, now)) {
          // The entry does not match its key (any more): make the index agree.
          await context.store.repairIndex(name, indexKeys);
          continue;
        }
        const next = await kind.change(stored.key, now);
        planned.push({ name, basedOn: stored.text, next, key: stored.key });
      } catch (error) {
        if (stopsSweep(error)) throw error;
        recordFailure(context, kind, name, error, summary);
      }
      // SQLite's driver is synchronous and key generation too, so without
      // this the whole batch would run before any waiting request. An
      // RSA-4096 key alone can take a second to generate.
      await yieldToEventLoop();
    }
    if (planned.length === 0) return;

    let written: string[];
    try {
      written = await context.store.writeBatch(planned);
    } catch (error) {
      if (stopsSweep(error)) throw error;
      written = [];
      for (const change of planned) {
        try {
          written.push(...(await context.store.writeBatch([change])));
        } catch (single) {
          if (stopsSweep(single)) throw single;
          recordFailure(context, kind, change.name, single, summary);
        }
      }
    }
    for (const change of planned) {
      await kind.settle?.(change, written.includes(change.name));
      if (!written.includes(change.name)) continue;
      kind.logChange(change.key, change.next);
      summary.count += 1;
      if (summary.names.length < MAX_SUMMARY_NAMES) summary.names.push(change.name);
    }
  });
}

function recordFailure(
  context: SweepContext,
  kind: SweepKind,
  name: string,
  error: unknown,
  summary: SweepSummary,
): void {
  summary.failed += 1;
  context.logger.error(
    { mount: context.mount, key: name, job: kind.job, err: error },
    `${kind.job} failed for key`,
  );
}

/**
 * Rotates every key whose automatic rotation is due at `now`. An HSM-held
 * key gets new HSM objects, which are destroyed again when its change is
 * not stored.
 */
export function rotateDueKeys(context: SweepContext, now: Date): Promise<SweepSummary> {
  return sweep(context, now, {
    job: "auto-rotation",
    index: "rotation",
    due: isRotationDue,
    change: async (key) => {
      if (key.hsm !== true) return rotateKey(key, now);
      const material = await generateHsmVersion(context, key, key.latestVersion + 1);
      return rotateKey(key, now, material);
    },
    settle: async (change, written) => {
      if (written || change.next?.hsm !== true) return;
      const added = change.next.versions[String(change.next.latestVersion)]?.hsmObject;
      if (added !== undefined) await discardUnused(context, [added], change.key);
    },
    logChange: (key, next) => {
      context.logger.info(
        { mount: context.mount, key: key.name, version: next?.latestVersion },
        "key rotated automatically",
      );
      context.onRotated?.([key.name]);
    },
  });
}

/**
 * Deletes every key whose scheduled deletion is due at `now`, and then the
 * HSM objects of an HSM-held key. The key is deleted first, so a failure
 * in the HSM leaves objects no key refers to (logged with their labels),
 * never a key whose objects are gone.
 */
export function deleteDueKeys(context: SweepContext, now: Date): Promise<SweepSummary> {
  return sweep(context, now, {
    job: "scheduled deletion",
    index: "deletion",
    due: isDeletionDue,
    change: async (key) => {
      if (!key.deletionAllowed) {
        throw new KeywardError("deletion_not_allowed", `key "${key.name}" does not allow deletion`);
      }
      return undefined;
    },
    settle: async (change, written) => {
      if (!written) return;
      await destroyHsmObjects(context, hsmObjectsOf(change.key), change.name, "key deleted");
    },
    logChange: (key) =>
      context.logger.info(
        { mount: context.mount, key: key.name, deletionDate: key.deletionDate },
        "key deleted as scheduled",
      ),
  });
}
