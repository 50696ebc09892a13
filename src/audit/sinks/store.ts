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
 * Keeps records behind the barrier, one value per record under
 * `sys/audit/store/<device>/<seq padded to 20 digits>`, so they are
 * encrypted at rest and can be searched and verified through the API.
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
    return value === undefined ? undefined : tailOfLine(Buffer.from(value).toString("utf8"));
  }

  async write(line: string, record: ChainedRecord): Promise<void> {
    await this.writeBatch([line], [record]);
  }

  /**
   * Stores the records in one barrier transaction whose commit is not
   * synced to the disk. The records survive a killed process at once and
   * reach the disk with the next synced commit. A request that changes
   * data makes one: its request record is written before the handler runs,
   * so no change becomes durable without the record that asked for it.
   * Only the records of read-only requests and of responses may be lost
   * to a power failure, and none to a crash of Keyward.
   */
  async writeBatch(lines: string[], records: ChainedRecord[]): Promise<void> {
    await this.#barrier.transaction(
      async (tx) => {
        for (const [index, record] of records.entries()) {
          await tx.put(this.#keyOf(record), Buffer.from(lines[index] ?? "", "utf8"));
        }
      },
      { syncToDisk: false },
    );
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
      if (value !== undefined) yield Buffer.from(value).toString("utf8");
    }
  }

  abort(): void {
    // A barrier write cannot be cancelled; the device stops queueing behind it instead.
  }

  async close(): Promise<void> {
    // Nothing to release: the barrier belongs to the server.
  }
}
