import type { AppliedVersion, AppliedVersionReader } from "./artifacts.ts";
import { GroupCommit } from "./group-commit.ts";
import type { DeviceStore, RecordWriter } from "./store.ts";

/** Folder of the device store with the versions each device applied. */
export const APPLIED_FOLDER = "applied";
const FOLDER = APPLIED_FOLDER;

/** Returns the storage path of a device's applied versions. */
export function appliedPath(device: string): string {
  return `${FOLDER}/${device}`;
}

/** Applied versions of one device by artifact id. */
type AppliedRecord = Record<string, AppliedVersion>;

/** One report of `AppliedVersions.record`. */
interface AppliedReport {
  deviceName: string;
  versions: readonly { id: string; version: number }[];
  appliedAt: string;
}

/**
 * The versions each device's agent reported it applied, one record per
 * device at `devices/applied/<device>`, mapping artifact ids to the
 * version and the time it was reported.
 */
export class AppliedVersions implements AppliedVersionReader {
  readonly #store: DeviceStore;
  /** Reports from many agents share one commit, because each commit syncs to disk. */
  readonly #reports = new GroupCommit<AppliedReport>((reports) =>
    this.#store.transaction((writer) => storeReports(writer, reports)),
  );

  constructor(store: DeviceStore) {
    this.#store = store;
  }

  async appliedVersion(
    deviceName: string,
    artifactId: string,
  ): Promise<AppliedVersion | undefined> {
    const record = await this.all(deviceName);
    return Object.hasOwn(record, artifactId) ? record[artifactId] : undefined;
  }

  /** Returns every applied version of `deviceName` by artifact id. */
  async all(deviceName: string): Promise<Readonly<AppliedRecord>> {
    return (await this.#store.get<AppliedRecord>(appliedPath(deviceName))) ?? {};
  }

  /**
   * Records that `deviceName` applied each listed version at `appliedAt`
   * (RFC 3339). Resolves once the record is committed, together with the
   * reports of other devices that arrived meanwhile.
   */
  async record(
    deviceName: string,
    versions: readonly { id: string; version: number }[],
    appliedAt: string,
  ): Promise<void> {
    await this.#reports.write({ deviceName, versions, appliedAt });
  }

  /** Deletes the applied versions of `deviceName` in `writer`. */
  async delete(writer: RecordWriter, deviceName: string): Promise<void> {
    await writer.delete(appliedPath(deviceName));
  }
}

/**
 * Merges `reports` into their devices' records in `writer`, in order, and
 * returns the errors of reports whose stored record cannot be read, by
 * index. Those reports change nothing.
 */
async function storeReports(
  writer: RecordWriter,
  reports: readonly AppliedReport[],
): Promise<Map<number, unknown>> {
  const records = new Map<string, AppliedRecord>();
  const failures = new Map<number, unknown>();
  for (const [index, { deviceName, versions, appliedAt }] of reports.entries()) {
    let record = records.get(deviceName);
    if (record === undefined) {
      try {
        record = (await writer.get<AppliedRecord>(appliedPath(deviceName))) ?? {};
      } catch (error) {
        failures.set(index, error);
        continue;
      }
      records.set(deviceName, record);
    }
    for (const { id, version } of versions) {
      // defineProperty keeps an id such as `__proto__` an ordinary member.
      Object.defineProperty(record, id, {
        value: { version, appliedAt },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  for (const [deviceName, record] of records) await writer.put(appliedPath(deviceName), record);
  return failures;
}
