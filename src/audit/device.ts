import type { Logger } from "pino";
import { Mutex } from "../util/mutex.ts";
import {
  type CheckpointSigner,
  chainCheckpoint,
  chainRecord,
  GENESIS_HASH,
  recordLine,
} from "./chain.ts";
import type { PreparedPayload } from "./payload.ts";
import type { ChainStateStore } from "./persistence.ts";
import type { AuditSink } from "./sinks/sink.ts";
import type { ChainedRecord, ChainHead, DeviceEntry } from "./types.ts";

/** Minimum time between two error log lines about the same failing device, in milliseconds. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

export interface DeviceContext {
  logger: Logger;
  /** Id of the node this process runs as, which its records and checkpoints name. */
  nodeId: string;
  signer: CheckpointSigner;
  chainState: ChainStateStore;
  clock: () => Date;
  /** Maximum time a write (or a close) may take before it counts as failed, in milliseconds. */
  writeTimeoutMs: number;
  /** Records between two signed checkpoints. */
  checkpointInterval: number;
}

/** Counters of one device since it was opened. */
export interface DeviceStats {
  writes: number;
  failures: number;
  checkpoints: number;
}

/** Resolves after the I/O callbacks of the current event-loop turn have run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Thrown when a device operation exceeds its time limit. */
export class AuditTimeoutError extends Error {
  override readonly name = "AuditTimeoutError";
}

/**
 * One enabled audit device: a sink plus the device's hash chain.
 *
 * Writes go through a queue, so records reach the sink one at a time in
 * sequence order. Each write is bounded by `writeTimeoutMs`. A write that
 * times out while running aborts the sink's connection, and until it
 * settles every new write fails at once instead of queueing behind it, so
 * a hung device cannot hold requests or memory. A write that times out
 * while still queued is skipped. The chain head moves only when the sink
 * reports success, so a failed write leaves no gap in the sequence.
 *
 * Records that arrive while a write runs are written together in the next
 * one (group commit): the store device commits them in one transaction and
 * the file device fsyncs once, so concurrent requests share the cost of
 * making their records durable.
 */
export class AuditDevice {
  readonly entry: DeviceEntry;
  readonly stats: DeviceStats = { writes: 0, failures: 0, checkpoints: 0 };
  readonly #sink: AuditSink;
  readonly #context: DeviceContext;
  readonly #logger: Logger;
  readonly #queue = new Mutex();
  /** The last record written; undefined until the sink is open. */
  #head: ChainHead | undefined;
  #lastCheckpointSeq = 0;
  /** Records waiting for the next write; joined by every write until that write starts. */
  #batch: { payloads: PreparedPayload[]; done: Promise<void> } | undefined;
  #checkpointQueued = false;
  #stuck = false;
  #closing = false;
  /** True from a failed write until the next successful one. */
  #failing = false;
  #unloggedFailures = 0;
  #lastFailureLogAt = 0;

  constructor(entry: DeviceEntry, sink: AuditSink, context: DeviceContext) {
    this.entry = entry;
    this.#sink = sink;
    this.#context = context;
    this.#logger = context.logger.child({ device: entry.path, deviceType: entry.type });
  }

  /** The last record written, or undefined before the sink is open. */
  get head(): ChainHead | undefined {
    return this.#head === undefined ? undefined : { ...this.#head };
  }

  /** Opens the sink and finds where the chain continues. Throws when the sink cannot be opened. */
  async open(): Promise<void> {
    await this.#runTimed(() => this.#openSink());
  }

  /**
   * Appends a record to the log. Resolves once the sink wrote it; throws
   * when it failed or timed out. Failures are counted and logged here.
   */
  async write(payload: PreparedPayload): Promise<void> {
    try {
      if (this.#closing) throw new Error("the audit device is closed");
      if (this.#stuck) throw new Error("an earlier write to the audit device has not finished");
      await this.#enqueue(payload);
      this.#recordSuccess();
    } catch (error) {
      this.#recordFailure(error);
      throw error;
    }
  }

  /**
   * Signs the end of the current log with a checkpoint and opens the sink
   * again, so a file renamed by a log rotator ends signed and the chain
   * continues in a new file at the same path. Does nothing for sinks that
   * cannot reopen.
   */
  async reopen(): Promise<void> {
    const reopenSink = this.#sink.reopen?.bind(this.#sink);
    if (reopenSink === undefined || this.#closing) return;
    await this.#runTimed(async () => {
      if (this.#head === undefined) await this.#openSink();
      await this.#writeCheckpoint();
      const tail = await reopenSink();
      // The same file, not rotated after all: its last record must be the head.
      if (tail !== undefined && (tail.seq !== this.#head?.seq || tail.hash !== this.#head.hash)) {
        this.#logger.error(
          { lastSeq: tail.seq, headSeq: this.#head?.seq },
          "the reopened audit file ends with another record than the one last written; continuing from the file",
        );
        this.#head = { seq: tail.seq, hash: tail.hash };
        this.#lastCheckpointSeq = tail.checkpoint ? tail.seq : 0;
      }
    });
    this.#logger.info({ seq: this.#head?.seq }, "reopened the audit log");
  }

  /** Writes a final checkpoint when records follow the last one, then closes the sink. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    try {
      await this.#runTimed(() => this.#writeCheckpoint());
    } catch (error) {
      this.#logger.error({ err: error }, "failed to write the closing audit checkpoint");
    }
    try {
      await this.#runTimed(() => this.#sink.close());
    } catch (error) {
      this.#sink.abort();
      this.#logger.warn({ err: error }, "audit device did not close cleanly");
    }
  }

  async #openSink(): Promise<void> {
    const tail = await this.#sink.open();
    // A store device's legacy chain is kept apart, so only the other types continue a legacy head.
    const saved = await this.#context.chainState.load(this.entry.path, {
      legacyFallback: this.entry.type !== "store",
    });
    if (tail !== undefined && (saved === undefined || tail.seq >= saved.seq)) {
      this.#head = { seq: tail.seq, hash: tail.hash };
      // An unsigned tail left by a crash is covered by the next checkpoint.
      this.#lastCheckpointSeq = tail.checkpoint ? tail.seq : 0;
      return;
    }
    if (saved !== undefined) {
      // NOTE: a socket or syslog device cannot read its log back, so after a
      // crash it continues from its last checkpoint, and the receiver gets
      // the sequence numbers written since then a second time.
      if (this.#sink.readsBack && tail === undefined) {
        // A log rotator's new file, or a log someone emptied: only the old file can tell.
        this.#logger.warn(
          { checkpointSeq: saved.seq },
          "audit log is empty: continuing the chain from the last checkpoint, so a rotated log goes on where the old file ended",
        );
      } else if (this.#sink.readsBack) {
        this.#logger.error(
          { lastSeq: tail?.seq ?? 0, checkpointSeq: saved.seq },
          "audit log ends before its last checkpoint: it was truncated or replaced; continuing the chain from the checkpoint, so verification reports the missing records",
        );
      }
      this.#head = saved;
      this.#lastCheckpointSeq = saved.seq;
      return;
    }
    this.#head = { seq: 0, hash: GENESIS_HASH };
    this.#lastCheckpointSeq = 0;
  }

  /**
   * Adds a record to the batch that has not started yet, creating one when
   * none is waiting. The batch's timeout runs from its creation.
   */
  #enqueue(payload: PreparedPayload): Promise<void> {
    let batch = this.#batch;
    if (batch === undefined) {
      const created: { payloads: PreparedPayload[]; done: Promise<void> } = {
        payloads: [],
        done: Promise.resolve(),
      };
      created.done = this.#runTimed(async () => {
        // Records of requests that arrived in the same turn of the event
        // loop join this batch before it closes. Storage writes block the
        // loop, so without this pause every batch would hold one record.
        await nextTurn();
        // From here on, new records wait for the next batch.
        if (this.#batch === created) this.#batch = undefined;
        await this.#writeRecords(created.payloads);
      });
      created.done.catch(() => undefined);
      // A batch that expired before it started must not take more records.
      created.done
        .finally(() => {
          if (this.#batch === created) this.#batch = undefined;
        })
        .catch(() => undefined);
      this.#batch = created;
      batch = created;
    }
    batch.payloads.push(payload);
    return batch.done;
  }

  async #writeRecords(payloads: PreparedPayload[]): Promise<void> {
    if (this.#head === undefined) await this.#openSink();
    let head = this.#head as ChainHead;
    const records: ChainedRecord[] = [];
    const lines: string[] = [];
    for (const payload of payloads) {
      const { record, line } = chainRecord(payload.payload, head, payload.fields);
      records.push(record);
      lines.push(line);
      head = { seq: record.seq, hash: record.hash };
    }
    await this.#appendAll(records, lines);
    this.stats.writes += records.length;
    if (
      !this.#checkpointQueued &&
      this.#head!.seq - this.#lastCheckpointSeq >= this.#context.checkpointInterval
    ) {
      this.#checkpointQueued = true;
      this.#runTimed(() => this.#writeCheckpoint())
        .catch((error: unknown) =>
          this.#logger.error({ err: error }, "failed to write an audit checkpoint"),
        )
        .finally(() => {
          this.#checkpointQueued = false;
        });
    }
  }

  /** Writes a checkpoint after the head unless the head is one; saves the head behind the barrier. */
  async #writeCheckpoint(): Promise<void> {
    const head = this.#head;
    if (head === undefined || head.seq === this.#lastCheckpointSeq) return;
    const checkpoint = chainCheckpoint(
      head,
      this.#context.clock().toISOString(),
      this.#context.signer,
      this.#context.nodeId,
    );
    await this.#append(checkpoint);
    this.#lastCheckpointSeq = checkpoint.seq;
    this.stats.checkpoints += 1;
    try {
      await this.#context.chainState.save(this.entry.path, this.#head!);
    } catch (error) {
      this.#logger.warn({ err: error, seq: checkpoint.seq }, "failed to save the audit chain head");
    }
  }

  async #appendAll(records: ChainedRecord[], lines: string[]): Promise<void> {
    const last = records.at(-1);
    if (last === undefined) return;
    if (this.#sink.writeBatch === undefined || records.length === 1) {
      for (const [index, record] of records.entries()) await this.#append(record, lines[index]);
      return;
    }
    try {
      await this.#sink.writeBatch(lines, records);
    } catch (error) {
      if (this.#sink.readsBack) this.#head = undefined;
      throw error;
    }
    this.#head = { seq: last.seq, hash: last.hash };
  }

  /** Writes one record; `line` is its serialised form when the caller already has it. */
  async #append(record: ChainedRecord, line = recordLine(record)): Promise<void> {
    try {
      await this.#sink.write(line, record);
    } catch (error) {
      // A failed write may have left part of a line behind. A sink that
      // reads back is opened again before the next write, which cuts the
      // partial line off and takes the head from what the sink holds.
      if (this.#sink.readsBack) this.#head = undefined;
      throw error;
    }
    this.#head = { seq: record.seq, hash: record.hash };
  }

  /** Runs `work` in the queue, failing after the write timeout as described on the class. */
  async #runTimed(work: () => Promise<void>): Promise<void> {
    const job = { started: false, expired: false };
    const run = this.#queue.run(async () => {
      if (job.expired) throw new AuditTimeoutError("timed out waiting for earlier writes");
      job.started = true;
      await work();
    });
    // The timer may win the race; this keeps the later outcome from being unhandled.
    run.catch(() => undefined);

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        job.expired = true;
        if (job.started) {
          this.#stuck = true;
          this.#sink.abort();
          run
            .finally(() => {
              this.#stuck = false;
            })
            .catch(() => undefined);
        }
        reject(
          new AuditTimeoutError(
            `audit device write timed out after ${this.#context.writeTimeoutMs} ms`,
          ),
        );
      }, this.#context.writeTimeoutMs);
    });
    try {
      await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #recordSuccess(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#logger.info({ failures: this.stats.failures }, "audit device recovered");
  }

  /** Counts a failure and logs it: at once when the device starts failing, then at most once a minute. */
  #recordFailure(error: unknown): void {
    this.stats.failures += 1;
    const now = Date.now();
    if (this.#failing && now - this.#lastFailureLogAt < FAILURE_LOG_INTERVAL_MS) {
      this.#unloggedFailures += 1;
      return;
    }
    this.#logger.error(
      { err: error, failures: this.stats.failures, unloggedFailures: this.#unloggedFailures },
      "audit device write failed",
    );
    this.#failing = true;
    this.#unloggedFailures = 0;
    this.#lastFailureLogAt = now;
  }
}
