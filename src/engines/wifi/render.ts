import { derivePsk, isRawPsk } from "./passphrase.ts";
import type { Credential, KeyRecord, NetworkRecord } from "./types.ts";
import { usesPsk, usesSae } from "./types.ts";
import { ssidText } from "./validation.ts";

/** The MAC address that makes a `wpa_psk_file` line valid for every station. */
const ANY_STATION = "00:00:00:00:00:00";

/** Returns the passphrases of a credential that are valid now: the current one first, then the previous one in its grace window. */
function validGenerations(credential: Credential): { passphrase: string; generation: number }[] {
  const generations = [{ passphrase: credential.passphrase, generation: credential.generation }];
  if (credential.previous) generations.push(credential.previous);
  return generations;
}

/** Returns the SAE password identifier a key uses for one generation: the stem, ".", then the generation. */
export function saeIdentifier(key: KeyRecord, generation: number): string | undefined {
  return key.saePasswordId === undefined ? undefined : `${key.saePasswordId}.${generation}`;
}

/**
 * Renders hostapd's `wpa_psk_file` (hostapd 2.10, hostapd.wpa_psk): one
 * line per valid passphrase, `[keyid=<id>] [vlanid=<n>] <MAC> <passphrase>`.
 * A key in its grace window has two lines for its MAC, and hostapd tries
 * both PSKs in the 4-way handshake. The shared passphrase uses MAC
 * 00:00:00:00:00:00, which any station may use. Empty (one comment line)
 * for networks without WPA-PSK.
 */
export function renderWpaPskFile(network: NetworkRecord, keys: readonly KeyRecord[]): string {
  const lines = [`# Keyward Wi-Fi network ${network.name}, version ${network.version}`];
  if (!usesPsk(network.security)) return `${lines[0]}\n`;
  if (network.shared) {
    for (const entry of validGenerations(network.shared)) {
      lines.push(`${ANY_STATION} ${entry.passphrase}`);
    }
  }
  for (const key of keys) {
    const tags = [`keyid=${key.keyId}`];
    if (key.vlan !== undefined) tags.push(`vlanid=${key.vlan}`);
    for (const entry of validGenerations(key.credential)) {
      lines.push(`${tags.join(" ")} ${key.mac} ${entry.passphrase}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Renders `sae_password` lines for hostapd.conf (hostapd 2.10 has no file
 * of its own for them): `sae_password=<pw>[|mac=<MAC>][|vlanid=<n>][|id=<identifier>]`.
 * hostapd uses the last entry that matches a station's MAC and password
 * identifier, so only a key with an identifier stem keeps its previous
 * passphrase in the grace window, under the previous generation's
 * identifier. Keys without one, and the shared passphrase, list only the
 * current passphrase. Empty (one comment line) for networks without SAE.
 */
export function renderSaePasswords(network: NetworkRecord, keys: readonly KeyRecord[]): string {
  const lines = [`# Keyward Wi-Fi network ${network.name}, version ${network.version}`];
  if (!usesSae(network.security)) return `${lines[0]}\n`;
  if (network.shared) lines.push(`sae_password=${network.shared.passphrase}`);
  for (const key of keys) {
    const generations =
      key.saePasswordId === undefined
        ? [{ passphrase: key.credential.passphrase, generation: key.credential.generation }]
        : validGenerations(key.credential);
    for (const entry of generations) {
      let line = `sae_password=${entry.passphrase}|mac=${key.mac}`;
      if (key.vlan !== undefined) line += `|vlanid=${key.vlan}`;
      const identifier = saeIdentifier(key, entry.generation);
      if (identifier !== undefined) line += `|id=${identifier}`;
      lines.push(line);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Writes a string value for wpa_supplicant.conf: quoted, which its parser ends at the last `"`. */
function quoted(value: string): string {
  return `"${value}"`;
}

/**
 * Writes a passphrase as a wpa_supplicant.conf string: quoted, or as hex
 * digits of its bytes when it contains `"`. wpa_supplicant 2.10 strips a
 * `#` comment unless it is inside a pair of quotes. It pairs every `"` on
 * the line, so a quote inside the value can turn the rest into a comment.
 */
function passphraseString(passphrase: string): string {
  return passphrase.includes('"')
    ? Buffer.from(passphrase, "utf8").toString("hex")
    : quoted(passphrase);
}

/** Writes wpa_supplicant's `psk`: a raw PSK as is, a passphrase quoted, or its derived PSK when it contains `"`. */
function pskValue(network: NetworkRecord, passphrase: string): string {
  if (isRawPsk(passphrase)) return passphrase.toLowerCase();
  if (!passphrase.includes('"')) return quoted(passphrase);
  return derivePsk(passphrase, Buffer.from(network.ssidHex, "hex")).toString("hex");
}

/**
 * Renders a wpa_supplicant.conf `network={...}` block for the station that
 * uses `key`. The SSID is quoted text when it is printable UTF-8 without
 * a double quote, and hex otherwise. Contains the passphrase, or for a
 * passphrase with a double quote its derived PSK and its bytes in hex.
 */
export function renderSupplicantBlock(network: NetworkRecord, key: KeyRecord): string {
  const text = ssidText(network.ssidHex);
  const ssid = text !== undefined && !text.includes('"') ? quoted(text) : network.ssidHex;
  const passphrase = key.credential.passphrase;
  const lines = ["network={", `\tssid=${ssid}`];
  if (network.security === "wpa2-psk") {
    lines.push("\tkey_mgmt=WPA-PSK");
    lines.push(`\tpsk=${pskValue(network, passphrase)}`);
    lines.push("\tieee80211w=1");
  } else {
    lines.push(network.security === "wpa3-sae" ? "\tkey_mgmt=SAE" : "\tkey_mgmt=WPA-PSK SAE");
    if (network.security === "wpa2-wpa3") lines.push(`\tpsk=${pskValue(network, passphrase)}`);
    lines.push(`\tsae_password=${passphraseString(passphrase)}`);
    const identifier = saeIdentifier(key, key.credential.generation);
    if (identifier !== undefined) lines.push(`\tsae_password_id=${quoted(identifier)}`);
    lines.push(network.security === "wpa3-sae" ? "\tieee80211w=2" : "\tieee80211w=1");
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
