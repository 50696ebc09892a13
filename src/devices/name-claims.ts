import type { Logger } from "pino";
import { KeywardError } from "../errors.ts";
import { claimName, type NameClaim, releaseName } from "../util/name-claims.ts";
import { DEVICE_REGISTRY_FOLDER, devicePath } from "./context.ts";
import type { DeviceStore, RecordWriter } from "./store.ts";

/**
 * Folder of the device store with one claim per device name in lower
 * case, at `name-claims/<lower-case name>`. The claim's `id` is the name
 * of the device that owns it, as spelled in `registry/<name>`.
 */
export const NAME_CLAIMS_FOLDER = "name-claims";

/**
 * A device name claim. `others` lists the devices, stored before name
 * claims existed, whose names differ from the owner's only in case. The
 * backfill finds them. When the owner is deleted, the claim passes to one
 * of them, so the name stays claimed while any spelling of it exists.
 */
interface DeviceNameClaim extends NameClaim {
  others?: string[];
}

/** Path of the record stating that every device stored before claims existed has one. */
export const NAME_CLAIMS_BACKFILLED_PATH = "name-claims-backfilled";

/**
 * Devices whose claims one backfill transaction writes. Each costs at
 * most four reads and one write, so a transaction stays well below the
 * barrier's headroom of 1,000 encryptions.
 */
const BACKFILL_BATCH_SIZE = 200;

/** The record at `NAME_CLAIMS_BACKFILLED_PATH`. */
interface BackfillRecord {
  completedAt: string;
  /** The number of devices the backfill visited. */
  devices: number;
}

/** Returns the path of the claim of device `name`, which its other spellings in case share. */
export function nameClaimPath(name: string): string {
  return `${NAME_CLAIMS_FOLDER}/${name.toLowerCase()}`;
}

function deviceExists(writer: RecordWriter) {
  return async (name: string) => (await writer.get(devicePath(name))) !== undefined;
}

/**
 * Claims the lower-case form of `name` for device `name` inside `writer`
 * (see `util/name-claims.ts`). Throws `already_exists` when a device whose
 * name differs only in case owns the claim. Certificate templates
 * lower-case DNS names, so both devices would get certificates for one
 * name.
 */
export async function claimDeviceName(writer: RecordWriter, name: string): Promise<void> {
  const holder = await claimName(writer, nameClaimPath(name), name, deviceExists(writer));
  if (holder !== undefined) {
    throw new KeywardError(
      "already_exists",
      `device "${holder}" exists, and device names that differ only in case would share certificate names`,
      { field: "name" },
    );
  }
}

/**
 * Releases device `name`'s part in its name claim inside `writer`. When
 * the device owns the claim, the claim passes to the next older device
 * that differs only in case and still exists, or is deleted when there is
 * none. When the device is one of those older devices, it leaves the list.
 */
export async function releaseDeviceName(writer: RecordWriter, name: string): Promise<void> {
  const path = nameClaimPath(name);
  const claim = await writer.get<DeviceNameClaim>(path);
  if (claim === undefined || (claim.id !== name && !claim.others?.includes(name))) return;
  const exists = deviceExists(writer);
  const others: string[] = [];
  for (const other of claim.others ?? []) {
    if (other !== name && other !== claim.id && (await exists(other))) others.push(other);
  }
  if (claim.id !== name) {
    await writer.put(path, claimOf(claim.id, others));
    return;
  }
  const [next, ...rest] = others;
  if (next === undefined) await releaseName(writer, path, name);
  else await writer.put(path, claimOf(next, rest));
}

function claimOf(id: string, others: string[]): DeviceNameClaim {
  return others.length === 0 ? { id } : { id, others };
}

/**
 * Writes the claims of the devices stored before name claims existed.
 * Device creation checks only the claim, so it must not start before
 * every older device has one. The first creation after each unseal calls
 * `ensure`, which reads the backfill record and, when it is missing,
 * claims the name of every listed device in batches and then writes the
 * record. A device created meanwhile, on any node, claims its own name, so
 * once the record exists every stored device has a claim.
 *
 * NOTE: a node running a Keyward version without name claims creates
 * devices without claims, even after the backfill. Upgrade every node
 * before creating devices.
 */
export class DeviceNameBackfill {
  readonly #store: DeviceStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  #done: Promise<void> | undefined;

  constructor(store: DeviceStore, clock: () => Date, logger: Logger) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
  }

  /** Resolves once every stored device has a name claim; a failed backfill runs again at the next call. */
  ensure(): Promise<void> {
    this.#done ??= this.#run().catch((error: unknown) => {
      this.#done = undefined;
      throw error;
    });
    return this.#done;
  }

  async #run(): Promise<void> {
    if ((await this.#store.get<BackfillRecord>(NAME_CLAIMS_BACKFILLED_PATH)) !== undefined) return;
    const names = await this.#store.list(DEVICE_REGISTRY_FOLDER);
    if (names.length > 0) {
      this.#logger.info({ devices: names.length }, "writing the name claims of existing devices");
    }
    for (let start = 0; start < names.length; start += BACKFILL_BATCH_SIZE) {
      const clashes = await this.#store.transaction((writer) =>
        claimBatch(writer, names.slice(start, start + BACKFILL_BATCH_SIZE)),
      );
      for (const { device, holder } of clashes) {
        this.#logger.warn(
          { device, holder },
          "two devices whose names differ only in case exist from before name claims; delete one of them",
        );
      }
    }
    await this.#store.put(NAME_CLAIMS_BACKFILLED_PATH, {
      completedAt: this.#clock().toISOString(),
      devices: names.length,
    } satisfies BackfillRecord);
    if (names.length > 0) {
      this.#logger.info({ devices: names.length }, "wrote the name claims of existing devices");
    }
  }
}

/** Claims the names of the devices in `names` that still exist; returns the devices whose claim another device owns. */
async function claimBatch(writer: RecordWriter, names: readonly string[]) {
  const clashes: { device: string; holder: string }[] = [];
  const exists = deviceExists(writer);
  for (const name of names) {
    if (!(await exists(name))) continue;
    const path = nameClaimPath(name);
    const holder = await claimName(writer, path, name, exists);
    if (holder === undefined) continue;
    clashes.push({ device: name, holder });
    const claim = (await writer.get<DeviceNameClaim>(path))!;
    if (!claim.others?.includes(name)) {
      await writer.put(path, claimOf(claim.id, [...(claim.others ?? []), name]));
    }
  }
  return clashes;
}
