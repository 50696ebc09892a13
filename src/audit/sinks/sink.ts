import type { ChainedRecord, ChainHead } from "../types.ts";

/** The last record a sink holds: its chain head and whether it is a checkpoint. */
export interface SinkTail extends ChainHead {
  checkpoint: boolean;
}

/**
 * The destination of a device's records: a file, a socket, syslog or the
 * barrier. The device owns the hash chain, the queue and the timeouts, so a
 * sink only moves lines and never gets two writes at once.
 */
export interface AuditSink {
  /** True when `open` reads the sink's last record back (file, store). */
  readonly readsBack: boolean;
  /**
   * Opens the file or connection. Returns where the log ends when the sink
   * can read its own records back (file, store), and undefined otherwise.
   */
  open(): Promise<SinkTail | undefined>;
  /**
   * Writes one record, given both as its line (no newline) and parsed.
   * Resolves once the record is durable (file, store) or handed to the
   * kernel (socket, syslog).
   */
  write(line: string, record: ChainedRecord): Promise<void>;
  /**
   * Writes several records at once with the same guarantee as `write`, all
   * or none: one transaction or one fsync for the lot. Sinks without it get
   * their records one `write` at a time.
   */
  writeBatch?(lines: string[], records: ChainedRecord[]): Promise<void>;
  /**
   * Closes and opens the file or connection again, for a log rotator that
   * renamed the file. Returns what `open` returns for the new one.
   */
  reopen?(): Promise<SinkTail | undefined>;
  /** Drops the connection after a timed-out write, so the pending write fails and the next one reconnects. */
  abort(): void;
  close(): Promise<void>;
}

/** Reads the tail from a record line; undefined when the line is not a chained record. */
export function tailOfLine(line: string): SinkTail | undefined {
  try {
    const record = JSON.parse(line) as { type?: unknown; seq?: unknown; hash?: unknown };
    if (typeof record.seq === "number" && typeof record.hash === "string") {
      return { seq: record.seq, hash: record.hash, checkpoint: record.type === "checkpoint" };
    }
  } catch {
    // Not JSON: the caller treats the log as having no readable head.
  }
  return undefined;
}
