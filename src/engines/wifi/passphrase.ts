import { pbkdf2Sync, randomInt } from "node:crypto";
import type { PassphraseCharset, PassphrasePolicy } from "./types.ts";

const DIGITS = "0123456789";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * The characters of each charset. `unambiguous` leaves out characters that
 * look alike when typed from paper (0/O, 1/l/I). `printable` is printable
 * ASCII without the space, so a passphrase shows no invisible edges, and
 * without `|`, which ends the password in hostapd's `sae_password` lines.
 */
const CHARSETS: Record<PassphraseCharset, string> = {
  alphanumeric: DIGITS + LOWER + UPPER,
  unambiguous: "23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ",
  printable: Array.from({ length: 94 }, (_, index) => String.fromCharCode(33 + index))
    .filter((character) => character !== "|")
    .join(""),
};

/** The default policy: 24 alphanumeric characters, about 143 bits. */
export const DEFAULT_PASSPHRASE_POLICY: PassphrasePolicy = { length: 24, charset: "alphanumeric" };

/** Draws a passphrase to `policy`, each character uniformly from the charset. */
export function generatePassphrase(policy: PassphrasePolicy): string {
  const characters = CHARSETS[policy.charset];
  let passphrase = "";
  for (let index = 0; index < policy.length; index += 1) {
    passphrase += characters[randomInt(characters.length)];
  }
  return passphrase;
}

/** True for a raw PSK: exactly 64 hex digits. */
export function isRawPsk(value: string): boolean {
  return /^[0-9A-Fa-f]{64}$/.test(value);
}

/**
 * Derives the 256-bit PSK as IEEE 802.11 (Annex J.4) defines it:
 * PBKDF2-HMAC-SHA1 over the passphrase with the SSID's bytes as salt, 4096
 * iterations, 32 bytes. The standard's passphrases are ASCII, and a
 * non-ASCII passphrase is taken as its UTF-8 bytes, as `wpa_passphrase` does. A
 * 64-hex-digit value is a PSK already and is returned decoded.
 */
export function derivePsk(passphrase: string, ssid: Uint8Array): Buffer {
  if (isRawPsk(passphrase)) return Buffer.from(passphrase, "hex");
  return pbkdf2Sync(Buffer.from(passphrase, "utf8"), ssid, 4096, 32, "sha1");
}
