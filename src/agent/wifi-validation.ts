/**
 * Checks of the Wi-Fi files the agent installs, run before every install
 * whether or not a `check` command is configured, so that hostapd or
 * wpa_supplicant never loads a file it would reject. The rules follow
 * hostapd 2.10's parsers of `wpa_psk_file` and `sae_password`.
 */

import { MAX_WPA_PSK_LINE_LENGTH } from "../engines/wifi/psk-line-length.ts";

/** The files of a Wi-Fi artifact: the access point's two and the station's one. */
export const WIFI_FILES = ["wpa_psk_file", "sae_password", "wpa_supplicant"] as const;
export type WifiFile = (typeof WIFI_FILES)[number];

/** A Wi-Fi file the agent will not install. The message names the line and never contains a passphrase. */
export class WifiFileError extends Error {
  override readonly name = "WifiFileError";
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** hostapd 2.10 rejects a `keyid` of 32 or more characters ("PSK keyid too long"). */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$/;

function isPassphrase(value: string): boolean {
  return /^[0-9A-Fa-f]{64}$/.test(value) || /^[\x20-\x7e]{8,63}$/.test(value);
}

function isVlan(value: string): boolean {
  return /^[1-9][0-9]{0,3}$/.test(value) && Number(value) <= 4094;
}

/** Returns the numbered lines with content, skipping comments and empty lines as hostapd does. */
function contentLines(text: string): [number, string][] {
  if (!text.endsWith("\n")) throw new WifiFileError("the file does not end with a newline");
  return text
    .slice(0, -1)
    .split("\n")
    .map((line, index): [number, string] => [index + 1, line])
    .filter(([, line]) => line !== "" && !line.startsWith("#"));
}

/**
 * Checks a `wpa_psk_file` of lines `[keyid=<id>] [vlanid=<n>] <MAC> <passphrase>`,
 * each passphrase 8-63 printable ASCII characters or 64 hex digits.
 */
function validateWpaPskFile(text: string): void {
  for (const [number, line] of contentLines(text)) {
    if (line.length > MAX_WPA_PSK_LINE_LENGTH) {
      throw new WifiFileError(
        `line ${number} is longer than the ${MAX_WPA_PSK_LINE_LENGTH} characters hostapd reads`,
      );
    }
    let rest = line;
    while (/^(?:keyid|vlanid|wps)=/.test(rest)) {
      const space = rest.indexOf(" ");
      if (space < 0) throw new WifiFileError(`line ${number} has tags but no MAC address`);
      const [tag, value] = rest.slice(0, space).split("=", 2) as [string, string];
      if (tag === "vlanid" && !isVlan(value)) {
        throw new WifiFileError(`line ${number}: vlanid is not a VLAN ID from 1 to 4094`);
      }
      if (tag === "keyid" && !KEY_ID.test(value)) {
        throw new WifiFileError(
          `line ${number}: keyid must be 1-31 letters, digits, "_", "." and "-"`,
        );
      }
      if (tag === "wps" && value !== "0" && value !== "1")
        throw new WifiFileError(`line ${number}: invalid wps tag`);
      rest = rest.slice(space + 1);
    }
    if (!MAC.test(rest.slice(0, 17)) || rest[17] !== " ") {
      throw new WifiFileError(`line ${number} does not start with a MAC address and a space`);
    }
    if (!isPassphrase(rest.slice(18))) {
      throw new WifiFileError(
        `line ${number}: the passphrase is not 8-63 printable ASCII characters or 64 hex digits`,
      );
    }
  }
}

/** Checks a file of `sae_password=<pw>[|mac=<MAC>][|vlanid=<n>][|id=<identifier>]` lines and nothing else. */
function validateSaePasswords(text: string): void {
  for (const [number, line] of contentLines(text)) {
    if (!line.startsWith("sae_password=")) {
      throw new WifiFileError(`line ${number} is not a sae_password line`);
    }
    const [password, ...options] = line.slice("sae_password=".length).split("|");
    if (password === undefined || !/^[\x20-\x7e]{1,128}$/.test(password)) {
      throw new WifiFileError(`line ${number}: the password is empty or not printable ASCII`);
    }
    for (const option of options) {
      const [name, value = ""] = option.split("=", 2) as [string, string?];
      const valid =
        (name === "mac" && MAC.test(value)) ||
        (name === "vlanid" && isVlan(value)) ||
        (name === "id" && IDENTIFIER.test(value));
      // The name is not shown: a password that contains "|" splits into parts that read as options.
      if (!valid) {
        throw new WifiFileError(
          `line ${number}: invalid option after the password; only mac=, vlanid= and id= with valid values may follow it`,
        );
      }
    }
  }
}

/**
 * Checks that `text` is one `network={...}` block with the keys Keyward
 * renders, each string quoted (without `"` inside) or hex.
 */
function validateSupplicantBlock(text: string): void {
  const lines = contentLines(text);
  if (lines[0]?.[1] !== "network={" || lines.at(-1)?.[1] !== "}") {
    throw new WifiFileError("the file is not one network={...} block");
  }
  const seen = new Set<string>();
  for (const [number, line] of lines.slice(1, -1)) {
    const match = /^\t([a-z_0-9]+)=(.*)$/.exec(line);
    if (!match) throw new WifiFileError(`line ${number} is not a tab-indented key=value line`);
    const [, key, value] = match as unknown as [string, string, string];
    seen.add(key);
    // wpa_supplicant 2.10 pairs every `"` on a line when it strips `#` comments, so a quoted value must contain none.
    const quoted = /^"[^"]*"$/.test(value) ? value.slice(1, -1) : undefined;
    let valid: boolean;
    if (key === "ssid") {
      const bytes = quoted === undefined ? value.length / 2 : Buffer.byteLength(quoted, "utf8");
      valid =
        (quoted !== undefined || /^(?:[0-9a-f]{2})+$/.test(value)) && bytes >= 1 && bytes <= 32;
    } else if (key === "psk") {
      valid =
        quoted === undefined ? /^[0-9a-f]{64}$/.test(value) : /^[\x20-\x7e]{8,63}$/.test(quoted);
    } else if (key === "sae_password") {
      valid =
        quoted === undefined
          ? /^(?:[0-9a-f]{2}){1,128}$/.test(value)
          : /^[\x20-\x7e]{1,128}$/.test(quoted);
    } else if (key === "sae_password_id") {
      valid = quoted !== undefined && /^[\x20-\x7e]{1,128}$/.test(quoted);
    } else if (key === "key_mgmt") {
      valid = ["WPA-PSK", "SAE", "WPA-PSK SAE"].includes(value);
    } else if (key === "ieee80211w") {
      valid = value === "1" || value === "2";
    } else {
      valid = false;
    }
    if (!valid) throw new WifiFileError(`line ${number}: invalid ${key} value`);
  }
  if (
    !seen.has("ssid") ||
    !seen.has("key_mgmt") ||
    (!seen.has("psk") && !seen.has("sae_password"))
  ) {
    throw new WifiFileError("the network block lacks ssid, key_mgmt or a passphrase");
  }
}

/** Throws `WifiFileError` when `text` is not a valid `file`. */
export function validateWifiFile(file: WifiFile, text: string): void {
  if (file === "wpa_psk_file") validateWpaPskFile(text);
  else if (file === "sae_password") validateSaePasswords(text);
  else validateSupplicantBlock(text);
}
