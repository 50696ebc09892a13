import type { Barrier } from "../../seal/types.ts";
import { JsonRecordStore } from "../../util/json-record-store.ts";

export type { RecordWriter } from "../../util/json-record-store.ts";

/**
 * The Wi-Fi engine's records as JSON behind the barrier, under `<mount>/`:
 * `networks/<network>`, `keys/<network>/<key>` and `retired-networks/<network>`
 * (the last version of a deleted network, so a new one of that name starts
 * above it). Writes that touch several records run in one transaction, so a
 * failed write changes none of them.
 */
export class WifiStore extends JsonRecordStore {
  constructor(barrier: Barrier, mount: string) {
    super(barrier, {
      prefix: `${mount}/`,
      storageFailureMessage: "failed to store a Wi-Fi engine record",
      invalidJsonReason: "stored Wi-Fi record is not valid JSON",
    });
  }
}
