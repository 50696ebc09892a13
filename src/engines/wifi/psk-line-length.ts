import { KeywardError } from "../../errors.ts";
import { type KeyRecord, type NetworkRecord, usesPsk } from "./types.ts";

/**
 * Longest `wpa_psk_file` line hostapd 2.10 (Debian 12) reads, in
 * characters without the newline. The rest of a longer line becomes a line
 * of its own, which has no MAC address, so hostapd rejects the whole file
 * ("WPA-PSK setup failed") and an access point that reloads it stops
 * accepting every PSK.
 */
export const MAX_WPA_PSK_LINE_LENGTH = 127;

/** Length of `keyid=<id> [vlanid=<n>] <MAC> <passphrase>` as `renderWpaPskFile` writes it. */
function lineLength(key: KeyRecord, passphraseLength: number): number {
  const vlanTag = key.vlan === undefined ? 0 : ` vlanid=${key.vlan}`.length;
  return (
    "keyid=".length + key.keyId.length + vlanTag + " ".length + 17 + " ".length + passphraseLength
  );
}

/**
 * Throws `invalid_field` naming `field` when a `wpa_psk_file` line of `key`
 * could be longer than hostapd reads: with its current or previous
 * passphrase, or with one drawn to the network's policy at the next
 * rotation. Networks without WPA-PSK have no such file.
 */
export function checkWpaPskLineLength(network: NetworkRecord, key: KeyRecord, field: string): void {
  if (!usesPsk(network.security)) return;
  const passphraseLength = Math.max(
    network.passphrasePolicy.length,
    key.credential.passphrase.length,
    key.credential.previous?.passphrase.length ?? 0,
  );
  const length = lineLength(key, passphraseLength);
  if (length <= MAX_WPA_PSK_LINE_LENGTH) return;
  throw new KeywardError(
    "invalid_field",
    `key "${key.name}" would have a wpa_psk_file line of ${length} characters (key ID, VLAN, MAC and a ${passphraseLength}-character passphrase), and hostapd 2.10 reads at most ${MAX_WPA_PSK_LINE_LENGTH}; shorten "key_id" or "passphrase_policy.length"`,
    { field },
  );
}
