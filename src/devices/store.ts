import type { Barrier } from "../seal/types.ts";
import { JsonRecordStore } from "../util/json-record-store.ts";

export type { RecordWriter } from "../util/json-record-store.ts";

/** Barrier prefix of every record of the device registry. */
export const DEVICES_PREFIX = "devices/";

/**
 * The device registry's records as JSON values behind the barrier, under
 * `devices/`. Changes that touch several records run in one barrier
 * transaction, so a failed write leaves none of them changed.
 */
export class DeviceStore extends JsonRecordStore {
  constructor(barrier: Barrier) {
    super(barrier, {
      prefix: DEVICES_PREFIX,
      storageFailureMessage: "failed to store a device registry record",
      invalidJsonReason: "stored device registry record is not valid JSON",
    });
  }

  /** Writes one record in its own transaction. */
  async put(path: string, value: unknown): Promise<void> {
    await this.transaction((writer) => writer.put(path, value));
  }
}
