import { isKeywardError, KeywardError } from "../../errors.ts";
import { rotateKey, rotationDue } from "../../keys/index.ts";
import type { ManagedKey } from "../../keys/types.ts";
import type { KeyStore } from "./store.ts";
import type { Logger } from "./types.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

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
  logger: Logger;
  mount: string;
}

/**
 * Applies `act` to every key for which `due` holds at `now`, each under the
 * key's lock and re-checked there. A failure on one key is logged and the
 * sweep goes on; a sealed barrier ends it with the error. Returns the names
 * acted on.
 */
async function sweep(
  context: SweepContext,
  now: Date,
  job: string,
  due: (key: ManagedKey, now: Date) => boolean,
  act: (key: ManagedKey) => Promise<void>,
): Promise<string[]> {
  const done: string[] = [];
  for (const name of await context.store.list()) {
    try {
      const acted = await context.store.withLock(name, async () => {
        const key = await context.store.find(name);
        if (key === undefined || !due(key, now)) return false;
        await act(key);
        return true;
      });
      if (acted) done.push(name);
    } catch (error) {
      if (stopsSweep(error)) throw error;
      context.logger.error(
        { mount: context.mount, key: name, job, err: error },
        `${job} failed for key`,
      );
    }
  }
  return done;
}

/** Rotates every key whose automatic rotation is due at `now`; returns their names. */
export function rotateDueKeys(context: SweepContext, now: Date): Promise<string[]> {
  return sweep(context, now, "auto-rotation", isRotationDue, async (key) => {
    const rotated = rotateKey(key, now);
    await context.store.put(rotated);
    context.logger.info(
      { mount: context.mount, key: key.name, version: rotated.latestVersion },
      "key rotated automatically",
    );
  });
}

/** Deletes every key whose scheduled deletion is due at `now`; returns their names. */
export function deleteDueKeys(context: SweepContext, now: Date): Promise<string[]> {
  return sweep(context, now, "scheduled deletion", isDeletionDue, async (key) => {
    if (!key.deletionAllowed) {
      throw new KeywardError("deletion_not_allowed", `key "${key.name}" does not allow deletion`);
    }
    await context.store.delete(key.name);
    context.logger.info(
      { mount: context.mount, key: key.name, deletionDate: key.deletionDate },
      "key deleted as scheduled",
    );
  });
}
