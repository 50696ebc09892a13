import { colonSerial } from "../engines/pki/key-pairs.ts";
import type { AppliedVersion, DeviceArtifact } from "./artifacts.ts";
import type { DeviceRecord, DevicesConfig } from "./types.ts";

/** Returns a device as the admin API shows it. */
export function deviceView(device: DeviceRecord) {
  const latest = device.certificates.at(-1);
  return {
    name: device.name,
    id: device.id,
    tags: device.tags,
    groups: device.groups,
    state: device.state,
    certificate_serial: latest ? colonSerial(latest.serial) : null,
    certificate_expiration: latest?.expiration ?? null,
    encryption_key_id: device.encryptionKeyId ?? null,
    enrolled_at: device.enrolledAt ?? null,
    last_seen_at: device.lastSeenAt ?? null,
    revoked_at: device.revokedAt ?? null,
    created_at: device.createdAt,
    updated_at: device.updatedAt,
  };
}

/** Returns the registry's settings as the admin API shows them. */
export function configView(config: DevicesConfig) {
  return {
    pki_mount: config.pkiMount,
    pki_role: config.pkiRole,
    identity_ttl: config.identityTtlSeconds ?? null,
  };
}

/** Returns one artifact of a device as the status view shows it. */
export function artifactStatus(artifact: DeviceArtifact, applied: AppliedVersion | undefined) {
  return {
    id: artifact.id,
    kind: artifact.kind,
    version: artifact.version,
    next_version: artifact.next?.version ?? null,
    activate_at: artifact.next?.activateAt ?? null,
    applied_version: applied?.version ?? null,
    applied_at: applied?.appliedAt ?? null,
    in_sync: applied?.version === artifact.version,
  };
}

/** One device of one artifact in the rollout view. */
export interface RolloutDevice {
  device: string;
  version: number;
  applied_version: number | null;
  applied_at: string | null;
  in_sync: boolean;
}

/** An artifact in the rollout view: every device that has it, and whether all are in sync. */
export interface RolloutArtifact {
  id: string;
  kind: string;
  complete: boolean;
  devices: RolloutDevice[];
}

/** Collects per-device artifacts into the rollout view, in order of artifact id and device name. */
export class RolloutCollector {
  readonly #artifacts = new Map<string, RolloutArtifact>();

  add(device: string, artifact: DeviceArtifact, applied: AppliedVersion | undefined): void {
    let entry = this.#artifacts.get(artifact.id);
    if (!entry) {
      entry = { id: artifact.id, kind: artifact.kind, complete: true, devices: [] };
      this.#artifacts.set(artifact.id, entry);
    }
    const inSync = applied?.version === artifact.version;
    entry.devices.push({
      device,
      version: artifact.version,
      applied_version: applied?.version ?? null,
      applied_at: applied?.appliedAt ?? null,
      in_sync: inSync,
    });
    if (!inSync) entry.complete = false;
  }

  result(): RolloutArtifact[] {
    const artifacts = [...this.#artifacts.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const artifact of artifacts) {
      artifact.devices.sort((a, b) => (a.device < b.device ? -1 : 1));
    }
    return artifacts;
  }
}
