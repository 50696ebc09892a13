import { isKeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import type { StorageReader } from "../../storage/storage.ts";
import type { ChainedRecord } from "../types.ts";
import { type AuditSink, type SinkTail, tailOfLine } from "./sink.ts";

/** Storage prefix of every store device's records, behind the barrier. */
export const STORE_PREFIX = "sys/audit/store/";
/** Digits of a zero-padded sequence number, so keys list in sequence order. */
const SEQ_DIGITS = 20;

/** Returns the barrier prefix under which the store device at `devicePath` keeps its chains. */
export function storePrefix(devicePath: string): string {
  return `${STORE_PREFIX}${devicePath}/`;
}

/** Returns the barrier prefix of node `nodeId`'s chain of the store device at `devicePath`. */
export function nodeChainPrefix(devicePath: string, nodeId: string): string {
  return `${storePrefix(devicePath)}${nodeId}/`;
}

/**
 * Keeps records behind the barrier, so they are encrypted at rest and can
 * be searched and verified through the API. Each node writes its own hash
 * chain of the device, so several nodes on one storage never write the
 * same key. The records written together (one batch) are one value, their
 * lines joined by newlines, under `sys/audit/store/<device>/<node>/<seq of
 * the batch's first record, padded to 20 digits>`: one encryption and one
 * row per batch instead of per record. Disabling the device keeps its
 * records; enabling it again at the same path continues each node's chain.
 */
export class StoreSink implements AuditSink {
  readonly readsBack = true;
  readonly #barrier: Barrier;
  readonly #prefix: string;

  constructor(barrier: Barrier, devicePath: string, nodeId: string) {
    this.#barrier = barrier;
    this.#prefix = nodeChainPrefix(devicePath, nodeId);
  }

  /** Returns the tail of this node's chain only; other nodes' chains and the legacy chain are not continued. */
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
   *
   * The write fails, and stores nothing, when the batch's key already
   * exists, as it does when two processes write with the same node id.
   * The device then reads its chain's tail again before the next
   * write, so neither process overwrites the other's records.
   */
  async writeBatch(lines: string[], records: ChainedRecord[]): Promise<void> {
    const first = records[0];
    if (first === undefined) return;
    const key = this.#keyOf(first);
    const value = Buffer.from(lines.join("\n"), "utf8");
    // NOTE: this catches two writers of one chain only when their batches
    // start at the same sequence number. Batches that overlap without that
    // fork the chain, which verification reports.
    await this.#barrier.transaction(
      async (tx) => {
        if ((await tx.get(key)) !== undefined) {
          throw new Error(
            `the audit record key ${key} already exists: another process writes this chain, so give every Keyward node its own node id`,
          );
        }
        await tx.put(key, value);
      },
      { syncToDisk: false },
    );
  }

  #keyOf(record: ChainedRecord): string {
    return this.#prefix + String(record.seq).padStart(SEQ_DIGITS, "0");
  }

  abort(): void {
    // A barrier write cannot be cancelled; the device stops queueing behind it instead.
  }

  async close(): Promise<void> {
    // Nothing to release: the barrier belongs to the server.
  }
}

/**
 * One hash chain of a store device: a node's chain, or the legacy chain
 * that a server wrote before per-node chains.
 */
export interface StoreChain {
  /** The node that writes the chain, or null for the legacy chain. */
  node: string | null;
  /** Barrier prefix of the chain's values. */
  prefix: string;
}

/**
 * Lists the chains of the store device at `devicePath`: the legacy chain
 * first when one exists, then each node's chain in byte order of the node
 * ids.
 *
 * Records written before per-node chains stay where they are, directly
 * under `sys/audit/store/<device>/`, and are read as one more chain that
 * no node continues. They are not moved into a node's chain at open: a
 * move would rewrite audit evidence, and two nodes opening at once would
 * both try it.
 */
export async function listStoreChains(
  reader: StorageReader,
  devicePath: string,
): Promise<StoreChain[]> {
  const prefix = storePrefix(devicePath);
  const children = await reader.list(prefix);
  const chains: StoreChain[] = [];
  if (children.some((child) => !child.endsWith("/"))) chains.push({ node: null, prefix });
  for (const child of children) {
    if (child.endsWith("/")) chains.push({ node: child.slice(0, -1), prefix: prefix + child });
  }
  return chains;
}

/** A stored value of a chain that the barrier could not decrypt. */
export interface UnreadableValue {
  /** The value's barrier key. */
  key: string;
  /** Sequence number of the value's first record, read from its key. */
  seq: number | undefined;
}

/**
 * Reads the lines of one chain in sequence order.
 *
 * NOTE: it lists every key of the chain and reads each value, so search
 * and verification take time linear in the number of stored records.
 */
export class ChainReader {
  readonly chain: StoreChain;
  readonly #reader: StorageReader;
  /** The first value that could not be decrypted, once `lines` reached it. */
  unreadable: UnreadableValue | undefined;

  constructor(reader: StorageReader, chain: StoreChain) {
    this.#reader = reader;
    this.chain = chain;
  }

  /**
   * Yields the stored lines in sequence order. A value that fails the
   * barrier's integrity check (changed in the storage outside Keyward) is
   * recorded in `unreadable`, and the lines end there with `stopAtUnreadable`
   * or skip that value without it. Other storage errors are thrown.
   */
  async *lines(stopAtUnreadable: boolean): AsyncGenerator<string> {
    const prefix = this.chain.prefix;
    for (const name of await this.#reader.list(prefix)) {
      if (name.endsWith("/")) continue;
      const key = prefix + name;
      let value: Uint8Array | undefined;
      try {
        value = await this.#reader.get(key);
      } catch (error) {
        if (!isUndecryptable(error, key)) throw error;
        this.unreadable ??= { key, seq: /^\d+$/.test(name) ? Number(name) : undefined };
        if (stopAtUnreadable) return;
        continue;
      }
      if (value === undefined) continue;
      yield* Buffer.from(value).toString("utf8").split("\n");
    }
  }
}

/** Reports whether `error` is the barrier's report of a value at `key` that fails decryption. */
function isUndecryptable(error: unknown, key: string): boolean {
  return isKeywardError(error) && error.code === "storage_failure" && error.details?.key === key;
}
