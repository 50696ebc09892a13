import type { AppliedVersion, AppliedVersionReader } from "./artifacts.ts";
import type { DeviceStore, RecordWriter } from "./store.ts";

const FOLDER = "applied";

/** Returns the storage path of a device's applied versions. */
export function appliedPath(device: string): string {
  return `${FOLDER}/${device}`;
}

/** Applied versions of one device by artifact id. */
type AppliedRecord = Record<string, AppliedVersion>;

/**
 * The versions each device's agent reported it applied, one record per
 * device at `devices/applied/<device>`, mapping artifact ids to the
 * version and the time it was reported.
 */
export class AppliedVersions implements AppliedVersionReader {
  readonly #store: DeviceStore;

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

  /** Records that `deviceName` applied each listed version at `appliedAt` (RFC 3339). */
  async record(
    deviceName: string,
    versions: readonly { id: string; version: number }[],
    appliedAt: string,
  ): Promise<void> {
    await this.#store.withLock(appliedPath(deviceName), () =>
      this.#store.transaction(async (writer) => {
        const record: AppliedRecord =
          (await writer.get<AppliedRecord>(appliedPath(deviceName))) ?? {};
        for (const { id, version } of versions) {
          // defineProperty keeps an id such as `__proto__` an ordinary member.
          Object.defineProperty(record, id, {
            value: { version, appliedAt },
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        await writer.put(appliedPath(deviceName), record);
      }),
    );
  }

  /** Deletes the applied versions of `deviceName` in `writer`. */
  async delete(writer: RecordWriter, deviceName: string): Promise<void> {
    await writer.delete(appliedPath(deviceName));
  }
}
