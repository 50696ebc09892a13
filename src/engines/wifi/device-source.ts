import type { DeviceArtifact, DeviceArtifactSource, DeviceRef } from "../../devices/artifacts.ts";
import { WIFI_ARTIFACT_KIND } from "./device-artifacts.ts";
import type { WifiService } from "./service.ts";

/**
 * Delivers Wi-Fi credentials to devices on every Wi-Fi mount: access
 * points get their networks' hostapd files, and stations the
 * wpa_supplicant block of each key bound to them. `services` is called on
 * every request, so mounts added or removed since construction are seen.
 */
export class WifiDeviceSource implements DeviceArtifactSource {
  readonly kind = WIFI_ARTIFACT_KIND;
  readonly #services: () => Iterable<WifiService>;

  constructor(services: () => Iterable<WifiService>) {
    this.#services = services;
  }

  async artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]> {
    const artifacts: DeviceArtifact[] = [];
    for (const service of this.#services())
      artifacts.push(...(await service.deviceArtifacts(device)));
    return artifacts;
  }

  /** Deletes the keys bound to the device and replaces every passphrase of the networks it served as access point. */
  async deviceRevoked(device: DeviceRef): Promise<void> {
    for (const service of this.#services()) await service.deviceRevoked(device);
  }
}
