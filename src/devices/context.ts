import type { Logger } from "pino";
import type { AppliedVersions } from "./applied.ts";
import type { DeviceArtifactSource, DeviceRef } from "./artifacts.ts";
import type { BootstrapTokens } from "./bootstrap-tokens.ts";
import type { PkiResolver } from "./identity-certificates.ts";
import type { DeviceStore } from "./store.ts";
import type { DeviceRecord } from "./types.ts";
import type { DeviceChangeWaiters } from "./waiters.ts";

/** The state and services shared by the parts of the device registry. */
export interface DeviceContext {
  store: DeviceStore;
  clock: () => Date;
  logger: Logger;
  pki: PkiResolver;
  waiters: DeviceChangeWaiters;
  tokens: BootstrapTokens;
  applied: AppliedVersions;
  /** Every artifact source, the shared secrets first. */
  sources: () => readonly DeviceArtifactSource[];
  /** Time each device's `lastSeenAt` was last stored, in milliseconds, so it is stored at most once a minute. */
  lastSeenWrites: Map<string, number>;
}

/** Folder of the device store with one record per device. */
export const DEVICE_REGISTRY_FOLDER = "registry";

/** Returns the storage path of device `name`. */
export function devicePath(name: string): string {
  return `${DEVICE_REGISTRY_FOLDER}/${name}`;
}

/** Returns the storage path of the serial index entry of identity certificate `serial` (hex). */
export function serialPath(serial: string): string {
  return `serials/${serial}`;
}

/** Storage path of the registry's settings. */
export const CONFIG_PATH = "config";

/** Returns the identity of `device` as artifact sources see it. */
export function deviceRef(device: DeviceRecord): DeviceRef {
  return { name: device.name, id: device.id, groups: device.groups, tags: device.tags };
}
