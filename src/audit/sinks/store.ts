import type { Barrier } from "../../seal/types.ts";
import type { ChainedRecord } from "../types.ts";
import { type AuditSink, type SinkTail, tailOfLine } from "./sink.ts";

/** Storage prefix of every store device's records, behind the barrier. */
export const STORE_PREFIX = "sys/audit/store/";
/** Digits of a zero-padded sequence number, so keys list in sequence order. */
const SEQ_DIGITS = 20;

/** Returns the barrier prefix under which the store device at `devicePath` keeps its records. */
export function storePrefix(devicePath: string): string {
  return `${STORE_PREFIX}${devicePath}/`;
}

/**
 * Keeps records behind the barrier, so they are encrypted at rest and can
 * be searched and verified through the API. The records written together
 * (one batch) are one value, their lines joined by newlines, under
 * `sys/audit/store/<device>/<seq of the batch's first record, padded to
 * 20 digits>`: one encryption and one row per batch instead of per record.
 * Disabling the device keeps its records; enabling it again at the same
 * path continues the chain.
 */
export class StoreSink implements AuditSink {
  readonly readsBack = true;
  readonly #barrier: Barrier;
  readonly #prefix: string;

  constructor(barrier: Barrier, devicePath: string) {
    this.#barrier = barrier;
    this.#prefix = storePrefix(devicePath);
  }

  async open(): Promise<SinkTail | undefined> {
    const keys = await this.#barrier.list(this.#prefix);
    const last = keys.filter((key) => !key.endsWith("/")).at(-1);
    if (last === undefined) return undefined;
    const value = await this.#barrier.get(this.#prefix + last);
    if (value === undefined) return undefined;
    const text = Buffer.from(value).toString("utf8");
    return tailOfLine(text.slice(text.lastIndexOf("\n") + 1));
  }

  async write(line: string, record: ChainedRecord): Promise<void> {
    await this.writeBatch([line], [record]);
  }

  /**
   * Stores the records as one value, in a barrier transaction whose commit
   * is not synced to the disk. The records survive a killed process at
   * once and reach the disk with the next synced commit. A request that
   * changes data makes one: its request record is written before the
   * handler runs, so no change becomes durable without the record that
   * asked for it. Only the records of read-only requests and of responses
   * may be lost to a power failure, and none to a crash of Keyward.
   */
  async writeBatch(lines: string[], records: ChainedRecord[]): Promise<void> {
    const first = records[0];
    if (first === undefined) return;
    const value = Buffer.from(lines.join("\n"), "utf8");
    await this.#barrier.transaction((tx) => tx.put(this.#keyOf(first), value), {
      syncToDisk: false,
    });
  }

  #keyOf(record: ChainedRecord): string {
    return this.#prefix + String(record.seq).padStart(SEQ_DIGITS, "0");
  }

  /**
   * Yields the stored lines in sequence order.
   *
   * NOTE: it lists every key of the device and reads each value, so search
   * and verification take time linear in the number of stored records.
   */
  async *lines(): AsyncGenerator<string> {
    for (const key of await this.#barrier.list(this.#prefix)) {
      if (key.endsWith("/")) continue;
      const value = await this.#barrier.get(this.#prefix + key);
      if (value === undefined) continue;
      yield* Buffer.from(value).toString("utf8").split("\n");
    }
  }

  abort(): void {
    // A barrier write cannot be cancelled; the device stops queueing behind it instead.
  }

  async close(): Promise<void> {
    // Nothing to release: the barrier belongs to the server.
  }
}
