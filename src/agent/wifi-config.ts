import { invalidField } from "../errors.ts";
import type { FileSettings } from "./config-artifacts.ts";
import { type ConfigObject, rejectUnknownFields, requireMatching } from "./config-values.ts";
import { WIFI_FILES, type WifiFile } from "./wifi-validation.ts";

/** A Wi-Fi file: an access point's `wpa_psk_file` or `sae_password` lines, or a station's network block. */
export interface WifiArtifactConfig extends FileSettings {
  kind: "wifi";
  /** `wifi:<mount>:<network>` for an access point, `wifi:<mount>:<network>:<key>` for a station. */
  id: string;
  mount: string;
  network: string;
  /** The key a station uses, or undefined for an access point. */
  key: string | undefined;
  file: WifiFile;
}

const MOUNT_PATH = /^(?=.{1,128}$)[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NAME_RULE = '1 to 64 of letters, digits, "_", "." and "-", starting with a letter or digit';

/**
 * Parses a `wifi` artifact entry. With `key` it is a station's
 * wpa_supplicant block (`file` must be `wpa_supplicant`, the default).
 * Without `key` it is an access point's `wpa_psk_file` or `sae_password` file.
 */
export function readWifi(
  entry: ConfigObject,
  prefix: string,
  commonFields: readonly string[],
  fileSettings: () => FileSettings,
): WifiArtifactConfig {
  rejectUnknownFields(entry, [...commonFields, "mount", "network", "key", "file"], prefix);
  const mount = requireMatching(
    entry,
    "mount",
    `${prefix}mount`,
    MOUNT_PATH,
    'a mount path such as "wifi"',
  );
  const network = requireMatching(entry, "network", `${prefix}network`, NAME, NAME_RULE);
  const key =
    entry.key === undefined
      ? undefined
      : requireMatching(entry, "key", `${prefix}key`, NAME, NAME_RULE);
  const file = entry.file ?? (key === undefined ? undefined : "wpa_supplicant");
  const allowed: readonly string[] =
    key === undefined ? ["wpa_psk_file", "sae_password"] : ["wpa_supplicant"];
  if (!WIFI_FILES.includes(file as WifiFile) || !allowed.includes(file as string)) {
    throw invalidField(
      `${prefix}file`,
      key === undefined
        ? `"${prefix}file" must be "wpa_psk_file" or "sae_password" for an access point (no "key")`
        : `"${prefix}file" must be "wpa_supplicant" for a station (with "key")`,
    );
  }
  return {
    kind: "wifi",
    id: key === undefined ? `wifi:${mount}:${network}` : `wifi:${mount}:${network}:${key}`,
    mount,
    network,
    key,
    file: file as WifiFile,
    ...fileSettings(),
  };
}
