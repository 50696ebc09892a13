import type { DeviceArtifact, DeviceArtifactSource, DeviceRef } from "../../devices/artifacts.ts";
import { WIREGUARD_ARTIFACT_KIND } from "./device-artifacts.ts";
import type { WireguardService } from "./service.ts";

/**
 * Delivers WireGuard peers to devices: one artifact per peer whose
 * `device_id` is the device's name, on every WireGuard mount. `services`
 * returns the current services, one per mount, and is called on every
 * request, so mounts added or removed since construction are seen.
 */
export class WireguardDeviceSource implements DeviceArtifactSource {
  readonly kind = WIREGUARD_ARTIFACT_KIND;
  readonly #services: () => Iterable<WireguardService>;

  constructor(services: () => Iterable<WireguardService>) {
    this.#services = services;
  }

  async artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]> {
    const artifacts: DeviceArtifact[] = [];
    for (const service of this.#services()) {
      artifacts.push(...(await service.deviceArtifacts(device.name)));
    }
    return artifacts;
  }

  /**
   * Deletes every peer bound to the device on every mount. The peers leave
   * all configurations, and the preshared keys of their pairs die with the
   * peers' secrets. Other peers' keys need no rotation: their private keys
   * never reached the server, so the device never held them.
   */
  async deviceRevoked(device: DeviceRef): Promise<void> {
    for (const service of this.#services()) await service.deletePeersOfDevice(device.name);
  }
}
