import type { DeviceArtifact } from "../../devices/artifacts.ts";
import {
  renderSaePasswords,
  renderSupplicantBlock,
  renderWpaPskFile,
  saeIdentifier,
} from "./render.ts";
import type { KeyRecord, NetworkRecord } from "./types.ts";
import { ssidText } from "./validation.ts";

/** The artifact kind of Wi-Fi access point files and station configurations. */
export const WIFI_ARTIFACT_KIND = "wifi";

/** Returns the artifact id of a network's access point files: `wifi:<mount>:<network>`. */
export function accessPointArtifactId(mount: string, network: string): string {
  return `${WIFI_ARTIFACT_KIND}:${mount}:${network}`;
}

/** Returns the artifact id of a station's configuration: `wifi:<mount>:<network>:<key>`. */
export function stationArtifactId(mount: string, network: string, key: string): string {
  return `${WIFI_ARTIFACT_KIND}:${mount}:${network}:${key}`;
}

/**
 * Builds what an access point installs: hostapd's `wpa_psk_file` and the
 * `sae_password` lines for hostapd.conf, both secret. The version is the
 * network's, which rises with every change to the network or its keys.
 */
export function buildAccessPointArtifact(
  mount: string,
  network: NetworkRecord,
  keys: readonly KeyRecord[],
): DeviceArtifact {
  return {
    id: accessPointArtifactId(mount, network.name),
    kind: WIFI_ARTIFACT_KIND,
    version: network.version,
    fields: {
      mount,
      network: network.name,
      role: "access-point",
      ssid: ssidText(network.ssidHex) ?? null,
      ssid_hex: network.ssidHex,
      security: network.security,
      vlans: network.vlans,
      keys: keys.length,
    },
    secrets: {
      wpa_psk_file: renderWpaPskFile(network, keys),
      sae_password: renderSaePasswords(network, keys),
    },
  };
}

/** Builds what a station bound to `key` installs: a wpa_supplicant `network={...}` block, secret. */
export function buildStationArtifact(
  mount: string,
  network: NetworkRecord,
  key: KeyRecord,
): DeviceArtifact {
  return {
    id: stationArtifactId(mount, network.name, key.name),
    kind: WIFI_ARTIFACT_KIND,
    version: network.version,
    fields: {
      mount,
      network: network.name,
      key: key.name,
      role: "station",
      ssid: ssidText(network.ssidHex) ?? null,
      ssid_hex: network.ssidHex,
      security: network.security,
      mac: key.mac,
      key_id: key.keyId,
      vlan: key.vlan ?? null,
      sae_password_id: saeIdentifier(key, key.credential.generation) ?? null,
      generation: key.credential.generation,
    },
    secrets: { wpa_supplicant: renderSupplicantBlock(network, key) },
  };
}
