import { KeywardError } from "../../errors.ts";
import type { PkiContext } from "./context.ts";
import { issuerUsage } from "./issuers.ts";
import {
  createNextIssuer,
  deleteCreated,
  type NextIssuer,
  type PrepareRequest,
} from "./rotation-sources.ts";
import { phaseOf, type RotationStatus, readRotationStatus } from "./rotation-status.ts";
import type { PkiLogger } from "./service.ts";
import type { PkiTransaction } from "./store.ts";
import {
  ISSUER_USAGES,
  type IssuerRecord,
  type IssuerRotationRecord,
  type IssuersConfig,
  type RotationPhase,
} from "./types.ts";

export type { RotationStatus } from "./rotation-status.ts";

const ROTATION_PATH = "config/rotation";
const ISSUERS_CONFIG_PATH = "config/issuers";

function outOfOrder(step: string, phase: RotationPhase, next: string): KeywardError {
  return new KeywardError(
    "invalid_state",
    `cannot ${step} the issuer rotation in phase "${phase}"; ${next}`,
  );
}

/** Returns the issuer with `issuing-certificates` added to or removed from its usage, in Vault's order. */
function withUsage(issuer: IssuerRecord, issuing: boolean): IssuerRecord {
  const current = issuerUsage(issuer);
  const usage = ISSUER_USAGES.filter((usage) =>
    usage === "issuing-certificates" ? issuing : current.includes(usage),
  );
  return { ...issuer, usage };
}

/**
 * The mount's phased issuer rotation. `prepare` adds a new issuer that is
 * published in `ca_chain` but may not issue. `switch` makes it the default
 * issuer, while the old one stays published and keeps signing its CRL and
 * OCSP responses. `retire` stops the old issuer from issuing for good, and
 * `rollback` undoes `prepare` or `switch`.
 *
 * Each step writes the issuers it changes, the default issuer and the
 * rotation record in one storage transaction while holding the locks of
 * those records. So a failed step changes nothing, and the state survives
 * a restart.
 */
export class IssuerRotation {
  readonly #context: PkiContext;
  readonly #logger: PkiLogger | undefined;

  constructor(context: PkiContext, logger?: PkiLogger) {
    this.#context = context;
    this.#logger = logger;
  }

  async #record(): Promise<IssuerRotationRecord | undefined> {
    return this.#context.store.get<IssuerRotationRecord>(ROTATION_PATH);
  }

  async status(): Promise<RotationStatus> {
    return readRotationStatus(this.#context, await this.#record());
  }

  /**
   * Phase 1: creates or adopts the new issuer (see `createNextIssuer`). It
   * is published at once but may not issue, and the default issuer, which
   * roles with `issuer_ref: default` follow, stays the old one.
   */
  async prepare(request: PrepareRequest): Promise<RotationStatus> {
    await this.#context.store.withLock(ROTATION_PATH, async () => {
      const record = await this.#record();
      const phase = phaseOf(record);
      if (phase === "prepared" || phase === "switched") {
        throw outOfOrder("prepare", phase, "switch and retire it, or roll it back, first");
      }
      const oldIssuer = await this.#context.issuers.resolve("default", "issuer_ref");
      if ((await this.#context.issuers.config()).defaultFollowsLatestIssuer) {
        throw new KeywardError(
          "invalid_state",
          "default_follows_latest_issuer is set, so a new issuer would become the default at once; set it to false in config/issuers before a phased rotation",
        );
      }
      const next = await createNextIssuer(this.#context, request, oldIssuer);
      try {
        await this.#commit([next.issuer.id], async (tx) => {
          const issuer = await requireIssuer(tx, next.issuer.id, "new");
          await tx.put(`issuers/${issuer.id}`, withUsage(issuer, false));
          // An issuer created while default_follows_latest_issuer was switched on meanwhile would be the default.
          await setDefault(tx, oldIssuer.id, next.issuer.id);
          await tx.put(ROTATION_PATH, this.#preparedRecord(oldIssuer.id, next));
        });
      } catch (error) {
        if (next.created) await this.#dropAfterFailure(next);
        throw error;
      }
      this.#log("prepare", oldIssuer.id, next.issuer.id);
    });
    return this.status();
  }

  /** Phase 2: the new issuer becomes the default and may issue; the old one stays published. */
  async switch(): Promise<RotationStatus> {
    await this.#step("switch", ["prepared"], "prepare a new issuer first", async (record) => {
      const next = await this.#context.store.get<IssuerRecord>(`issuers/${record.newIssuerId}`);
      if (!next) {
        throw new KeywardError(
          "invalid_state",
          `the new issuer ${record.newIssuerId} no longer exists; roll the rotation back`,
        );
      }
      // Throws invalid_state when the new issuer's key is gone.
      await this.#context.issuers.load(next);
      await this.#commit([next.id], async (tx) => {
        const issuer = await requireIssuer(tx, next.id, "new");
        await tx.put(`issuers/${issuer.id}`, withUsage(issuer, true));
        await setDefault(tx, issuer.id);
        await tx.put(ROTATION_PATH, {
          ...record,
          phase: "switched",
          switchedAt: this.#now(),
          newIssuerHasSigned: true,
        } satisfies IssuerRotationRecord);
      });
    });
    return this.status();
  }

  /**
   * Phase 3: the old issuer may no longer issue certificates. It stays
   * published, and keeps signing its CRL and OCSP responses, so the
   * certificates it issued keep verifying until they expire. Nothing rolls
   * this step back.
   */
  async retire(): Promise<RotationStatus> {
    await this.#step("retire", ["switched"], "switch to the new issuer first", async (record) => {
      const config = await this.#context.issuers.config();
      if (config.defaultIssuerId === record.oldIssuerId) {
        throw new KeywardError(
          "invalid_state",
          "the old issuer is the default issuer again, so retiring it would stop all issuance; make the new issuer the default or roll the rotation back",
        );
      }
      await this.#commit([record.oldIssuerId], async (tx) => {
        // An old issuer deleted meanwhile has nothing left to retire.
        const old = await tx.get<IssuerRecord>(`issuers/${record.oldIssuerId}`);
        if (old) await tx.put(`issuers/${old.id}`, withUsage(old, false));
        await tx.put(ROTATION_PATH, {
          ...record,
          phase: "retired",
          retiredAt: this.#now(),
        } satisfies IssuerRotationRecord);
      });
    });
    return this.status();
  }

  /**
   * Undoes the last phase. After `prepare` it drops the new issuer, or only
   * takes its issuing usage back when it was adopted. After `switch` the
   * old issuer is the default again, and the new one stops issuing but
   * stays published, so the certificates it issued keep verifying.
   */
  async rollback(): Promise<RotationStatus> {
    await this.#step(
      "roll back",
      ["prepared", "switched"],
      "only the prepare and switch steps can be rolled back",
      async (record) => {
        if (record.phase === "switched") await this.#unswitch(record);
        else await this.#unprepare(record);
      },
    );
    return this.status();
  }

  async #unswitch(record: IssuerRotationRecord): Promise<void> {
    await this.#commit([record.oldIssuerId, record.newIssuerId], async (tx) => {
      const old = await requireIssuer(tx, record.oldIssuerId, "old");
      const next = await tx.get<IssuerRecord>(`issuers/${record.newIssuerId}`);
      if (next) await tx.put(`issuers/${next.id}`, withUsage(next, false));
      await setDefault(tx, old.id);
      const { switchedAt: _switchedAt, ...prepared } = record;
      await tx.put(ROTATION_PATH, {
        ...prepared,
        phase: "prepared",
      } satisfies IssuerRotationRecord);
    });
  }

  async #unprepare(record: IssuerRotationRecord): Promise<void> {
    if (record.newIssuerCreated && record.newIssuerHasSigned) {
      throw new KeywardError(
        "invalid_state",
        'the new issuer has issued certificates since an earlier switch, so dropping it would leave them unverifiable; switch and retire instead, or stay in phase "prepared"',
      );
    }
    await this.#commit([record.newIssuerId], async (tx) => {
      await setDefault(tx, record.oldIssuerId, record.newIssuerId);
      if (record.newIssuerCreated) {
        await deleteCreated(tx, record.newIssuerId, record.newKeyCreatedId);
      } else {
        const next = await tx.get<IssuerRecord>(`issuers/${record.newIssuerId}`);
        if (next) await tx.put(`issuers/${next.id}`, withUsage(next, true));
      }
      await tx.delete(ROTATION_PATH);
    });
  }

  /** Runs one step under the rotation lock when the rotation is in one of `phases`, and logs it. */
  async #step(
    step: string,
    phases: RotationPhase[],
    next: string,
    work: (record: IssuerRotationRecord) => Promise<void>,
  ): Promise<void> {
    await this.#context.store.withLock(ROTATION_PATH, async () => {
      const record = await this.#record();
      const phase = phaseOf(record);
      if (!record || !phases.includes(phase)) throw outOfOrder(step, phase, next);
      await work(record);
      this.#log(step, record.oldIssuerId, record.newIssuerId);
    });
  }

  /**
   * Runs `work` in one transaction while holding the locks of the default
   * issuer setting and of the issuers it changes, taken in a fixed order.
   * The caller holds the rotation lock.
   */
  async #commit(issuerIds: string[], work: (tx: PkiTransaction) => Promise<void>): Promise<void> {
    const locks = [
      ISSUERS_CONFIG_PATH,
      ...[...new Set(issuerIds)].sort().map((id) => `issuers/${id}`),
    ];
    const store = this.#context.store;
    const run = (index: number): Promise<void> =>
      index === locks.length
        ? store.transaction(work)
        : store.withLock(locks[index] as string, () => run(index + 1));
    await run(0);
  }

  #preparedRecord(oldIssuerId: string, next: NextIssuer): IssuerRotationRecord {
    return {
      phase: "prepared",
      oldIssuerId,
      newIssuerId: next.issuer.id,
      newIssuerCreated: next.created,
      newKeyCreatedId: next.createdKeyId,
      newIssuerHasSigned: false,
      preparedAt: this.#now(),
    };
  }

  /** Removes an issuer that prepare created when recording the preparation failed. */
  async #dropAfterFailure(next: NextIssuer): Promise<void> {
    try {
      await deleteCreated(this.#context.store, next.issuer.id, next.createdKeyId);
    } catch (error) {
      this.#logger?.error(
        { mount: this.#context.mount, issuer: next.issuer.id, err: error },
        "failed to delete the issuer of a failed rotation prepare; delete it with DELETE issuer/:ref",
      );
    }
  }

  #now(): string {
    return this.#context.clock().toISOString();
  }

  #log(step: string, oldIssuerId: string, newIssuerId: string): void {
    this.#logger?.info(
      { mount: this.#context.mount, step, oldIssuer: oldIssuerId, newIssuer: newIssuerId },
      "PKI issuer rotation step",
    );
  }
}

async function requireIssuer(
  tx: PkiTransaction,
  id: string,
  which: "old" | "new",
): Promise<IssuerRecord> {
  const issuer = await tx.get<IssuerRecord>(`issuers/${id}`);
  if (!issuer) {
    throw new KeywardError(
      "invalid_state",
      `the ${which} issuer ${id} of the rotation no longer exists`,
    );
  }
  return issuer;
}

/** Makes `issuerId` the default issuer; with `onlyIf`, only while `onlyIf` is the default. */
async function setDefault(tx: PkiTransaction, issuerId: string, onlyIf?: string): Promise<void> {
  const config = (await tx.get<IssuersConfig>(ISSUERS_CONFIG_PATH)) ?? {
    defaultIssuerId: "",
    defaultFollowsLatestIssuer: false,
  };
  if (onlyIf !== undefined && config.defaultIssuerId !== onlyIf) return;
  await tx.put(ISSUERS_CONFIG_PATH, { ...config, defaultIssuerId: issuerId });
}
