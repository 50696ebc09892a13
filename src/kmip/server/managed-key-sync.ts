/**
 * Keeps the KMIP objects in step with the managed keys they refer to,
 * outside of KMIP requests: the objects of versions that transit added
 * (see transit-versions.ts), and the transit keys that an interrupted KMIP
 * request left without an object.
 *
 * A full pass runs when the KMIP service starts unsealed and after each
 * unseal. Single keys are checked when transit reports a rotation on this
 * node, or a change that another node made. Reads of an object through the
 * object store make the missing objects too, so these passes only make
 * them appear sooner.
 */
import type { Logger } from "pino";
import type { KeyStore } from "../../engines/transit/store.ts";
import { isKeywardError } from "../../errors.ts";
import { effectiveState } from "../../keys/index.ts";
import { KMIP_KEY_HOLDER, type KmipKeyMounts } from "./managed-keys.ts";
import type { KmipObjectStore } from "./object-store.ts";

/**
 * The minimum age of a transit key without a KMIP object before a full
 * pass removes it, in milliseconds. A KMIP request writes the key before
 * it commits the object, so a younger key may belong to a request that
 * another node is still running.
 */
export const ORPHAN_MIN_AGE_MS = 10 * 60 * 1000;

/** Reference records read per storage scan. */
const REFERENCE_PAGE_SIZE = 500;

export interface KmipManagedKeySyncOptions {
  store: KmipObjectStore;
  mounts: KmipKeyMounts;
  /** Returns the paths of the mounted transit engines, whose keys KMIP objects may refer to. */
  transitMounts: () => string[];
  logger: Pick<Logger, "info" | "warn" | "error" | "debug">;
  clock?: () => Date;
}

/** The counts of one full pass. */
export interface ManagedKeySyncSummary {
  /** Keys with a KMIP reference record that were checked. */
  keys: number;
  /** Objects made for versions that transit added. */
  objects: number;
  /** Transit keys (or reference records of deleted keys) removed because no object refers to them. */
  orphansRemoved: number;
  /** Keys without an object that are younger than `ORPHAN_MIN_AGE_MS`, kept for now. */
  orphansKept: number;
  /** Keys without an object that are or were active, so transit may have used them: kept and logged. */
  orphansUsable: number;
  /** Keys whose check failed; each failure is logged. */
  failed: number;
}

/** True for errors that mean the barrier closed, which end a pass. */
function isSealed(error: unknown): boolean {
  return isKeywardError(error) && (error.code === "sealed" || error.code === "not_initialized");
}

/** Runs the full passes and the single-key checks (see the file comment). */
export class KmipManagedKeySync {
  readonly #store: KmipObjectStore;
  readonly #mounts: KmipKeyMounts;
  readonly #transitMounts: () => string[];
  readonly #logger: Pick<Logger, "info" | "warn" | "error" | "debug">;
  readonly #clock: () => Date;
  /** The queued checks, run one after another. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: KmipManagedKeySyncOptions) {
    this.#store = options.store;
    this.#mounts = options.mounts;
    this.#transitMounts = options.transitMounts;
    this.#logger = options.logger;
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Queues a check of keys `names` of transit mount `mount`, or of every
   * KMIP key of the mount when `names` is undefined. Failures are logged.
   */
  notify(mount: string, names: readonly string[] | undefined): void {
    this.#enqueue(async () => {
      if (names === undefined) {
        await this.#syncMount(mount, this.#emptySummary(), false);
        return;
      }
      const keys = await this.#mounts.keyStore(mount);
      for (const name of names) {
        if ((await keys.referenceOf(name)) !== KMIP_KEY_HOLDER) continue;
        await this.#store.addVersionObjects(mount, name);
      }
    });
  }

  /**
   * Checks every key with a KMIP reference record in every transit mount:
   * makes the objects of versions that transit added, and removes the keys
   * that no object refers to once they are older than `ORPHAN_MIN_AGE_MS`.
   * Logs a summary and each removal. A failure is logged too, and the
   * returned promise still resolves (see `#enqueue`).
   */
  reconcileAll(): Promise<ManagedKeySyncSummary> {
    const summary = this.#emptySummary();
    const done = this.#enqueue(async () => {
      for (const mount of this.#transitMounts()) await this.#syncMount(mount, summary, true);
      this.#logger.info({ ...summary }, "checked the managed keys of KMIP objects");
    });
    return done.then(() => summary);
  }

  /** Resolves once every queued check has finished. */
  async idle(): Promise<void> {
    await this.#queue;
  }

  #emptySummary(): ManagedKeySyncSummary {
    return {
      keys: 0,
      objects: 0,
      orphansRemoved: 0,
      orphansKept: 0,
      orphansUsable: 0,
      failed: 0,
    };
  }

  #enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(work).catch((error: unknown) => {
      if (isSealed(error)) {
        this.#logger.debug({ err: error }, "managed-key check of KMIP objects stopped at seal");
        return;
      }
      this.#logger.error({ err: error }, "managed-key check of KMIP objects failed");
    });
    this.#queue = run;
    return run;
  }

  /** Checks every key of `mount` with a KMIP reference record, page by page. */
  async #syncMount(
    mount: string,
    summary: ManagedKeySyncSummary,
    removeOrphans: boolean,
  ): Promise<void> {
    const keys = await this.#mounts.keyStore(mount);
    let after: string | undefined;
    for (;;) {
      const names = await keys.scanReferences(after, REFERENCE_PAGE_SIZE);
      for (const name of names) {
        try {
          if ((await keys.referenceOf(name)) !== KMIP_KEY_HOLDER) continue;
          summary.keys += 1;
          const result = await this.#store.addVersionObjects(mount, name);
          summary.objects += result.added.length;
          if (!result.found && removeOrphans) await this.#removeOrphan(mount, keys, name, summary);
        } catch (error) {
          if (isSealed(error)) throw error;
          summary.failed += 1;
          this.#logger.error(
            { err: error, mount, key: name },
            "failed to check the managed key of a KMIP object",
          );
        }
      }
      if (names.length < REFERENCE_PAGE_SIZE) return;
      after = names.at(-1);
    }
  }

  /**
   * Removes key `name`, which no object refers to, with its reference
   * record, once it is older than `ORPHAN_MIN_AGE_MS` and still pre-active
   * or already destroyed. Transit rejects every use of a pre-active key, so
   * no data depends on it. A key that is or was active may protect data
   * that a transit client encrypted or signed, so it is kept and logged.
   * The check and the removal run as one object-store work, so no request
   * of this node commits the key's object in between.
   */
  async #removeOrphan(
    mount: string,
    keys: KeyStore,
    name: string,
    summary: ManagedKeySyncSummary,
  ): Promise<void> {
    await this.#store.exclusive(async (tx) => {
      if ((await tx.find(name)) !== undefined) return;
      const stored = await keys.load(name);
      if (stored !== undefined) {
        const now = this.#clock();
        const { createdAt } = stored.key;
        const age = now.getTime() - Date.parse(createdAt);
        // An unreadable creation time gives NaN, which keeps the key too.
        if (!(age >= ORPHAN_MIN_AGE_MS)) {
          summary.orphansKept += 1;
          return;
        }
        const state = effectiveState(stored.key, now);
        if (state !== "pre-active" && state !== "destroyed") {
          summary.orphansUsable += 1;
          this.#logger.warn(
            { mount, key: name, createdAt, state },
            "kept a transit key that no KMIP object refers to, because transit may have used it; " +
              "set its state to destroyed through transit to have it removed",
          );
          return;
        }
      }
      if (!(await keys.deleteReferenced(name, stored?.text))) return;
      summary.orphansRemoved += 1;
      if (stored === undefined) {
        this.#logger.warn(
          { mount, key: name },
          "removed the reference record of a deleted transit key that no KMIP object refers to",
        );
        return;
      }
      this.#logger.warn(
        { mount, key: name, createdAt: stored.key.createdAt },
        "removed a transit key that no KMIP object refers to, left by a KMIP request that did not finish",
      );
    });
  }
}
