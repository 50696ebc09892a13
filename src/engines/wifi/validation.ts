import { invalidField, KeywardError } from "../../errors.ts";
import { isRawPsk } from "./passphrase.ts";
import {
  PASSPHRASE_CHARSETS,
  type PassphraseCharset,
  type PassphrasePolicy,
  type SecurityMode,
  usesSae,
} from "./types.ts";

export { durationSeconds, integerIn, stringList, validateName } from "../wireguard/validation.ts";

/** SAE password identifier stems. */
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/**
 * Maximum key ID length: hostapd 2.10 rejects a `wpa_psk_file` line whose
 * `keyid` has 32 or more characters ("PSK keyid too long").
 */
export const MAX_KEY_ID_LENGTH = 31;

/** Key IDs: hostapd's `keyid` tag ends at a space, so only letters, digits, "_" and "-". */
const KEY_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_-]{0,${MAX_KEY_ID_LENGTH - 1}}$`);

/** Device and group names as the device registry accepts them. */
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * Returns the SSID's bytes from `ssid` (UTF-8 text) or `ssid_hex`. An SSID
 * is 1 to 32 bytes. Text may not contain control characters, so it can be
 * written into configuration files and the `WIFI:` URI.
 */
export function ssidBytes(ssid: unknown, ssidHex: unknown): Buffer {
  if (ssid !== undefined && ssidHex !== undefined) {
    throw invalidField("ssid_hex", 'set "ssid" or "ssid_hex", not both');
  }
  if (ssidHex !== undefined) {
    if (typeof ssidHex !== "string" || !/^(?:[0-9A-Fa-f]{2}){1,32}$/.test(ssidHex)) {
      throw invalidField("ssid_hex", '"ssid_hex" must be 1 to 32 bytes as hex digits');
    }
    return Buffer.from(ssidHex, "hex");
  }
  if (typeof ssid !== "string" || ssid.length === 0) {
    throw invalidField("ssid", '"ssid" must be a non-empty string');
  }
  if (/[\p{Cc}\p{Cs}]/u.test(ssid)) {
    throw invalidField("ssid", '"ssid" must not contain control characters; use "ssid_hex"');
  }
  const bytes = Buffer.from(ssid, "utf8");
  if (bytes.length > 32) {
    throw invalidField("ssid", `"ssid" is ${bytes.length} bytes in UTF-8; the maximum is 32`);
  }
  return bytes;
}

/** Returns the SSID as text when its bytes are valid UTF-8 without control characters. */
export function ssidText(ssidHex: string): string | undefined {
  const bytes = Buffer.from(ssidHex, "hex");
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return /[\p{Cc}]/u.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/**
 * Validates a given passphrase: 8 to 63 printable ASCII characters
 * (0x20-0x7e), or 64 hex digits, a raw PSK. SAE has no raw PSK and
 * hostapd's `sae_password` lines end the password at `|`, so networks
 * that use SAE reject both.
 */
export function validatePassphrase(
  value: unknown,
  security: SecurityMode,
  field = "passphrase",
): string {
  if (typeof value !== "string") throw invalidField(field, `"${field}" must be a string`);
  if (isRawPsk(value)) {
    if (usesSae(security)) {
      throw invalidField(field, `"${field}" is a raw PSK (64 hex digits), which SAE cannot use`);
    }
    return value.toLowerCase();
  }
  if (!/^[\x20-\x7e]*$/.test(value)) {
    throw invalidField(field, `"${field}" must contain printable ASCII characters only`);
  }
  if (value.length < 8 || value.length > 63) {
    throw invalidField(field, `"${field}" must be 8 to 63 characters, or 64 hex digits`);
  }
  if (usesSae(security) && value.includes("|")) {
    throw invalidField(field, `"${field}" must not contain "|" on a network that uses SAE`);
  }
  return value;
}

/** Reads a passphrase policy over `current`: `{length, charset}`. */
export function passphrasePolicy(value: unknown, current: PassphrasePolicy): PassphrasePolicy {
  const field = "passphrase_policy";
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidField(field, `"${field}" must be an object with "length" and "charset"`);
  }
  const policy = { ...current };
  for (const [name, member] of Object.entries(value)) {
    if (name === "length") {
      if (typeof member !== "number" || !Number.isInteger(member) || member < 8 || member > 63) {
        throw invalidField(`${field}.length`, `"${field}.length" must be an integer from 8 to 63`);
      }
      policy.length = member;
    } else if (name === "charset") {
      if (!PASSPHRASE_CHARSETS.includes(member as PassphraseCharset)) {
        throw invalidField(
          `${field}.charset`,
          `"${field}.charset" must be one of ${PASSPHRASE_CHARSETS.join(", ")}`,
        );
      }
      policy.charset = member as PassphraseCharset;
    } else {
      throw new KeywardError("unknown_field", `unknown field "${field}.${name}"`, {
        field: `${field}.${name}`,
      });
    }
  }
  return policy;
}

/**
 * Validates a station MAC address: six hex pairs joined by ":" or "-".
 * Returns it lowercase with colons. Group addresses, such as the wildcard
 * ff:ff:ff:ff:ff:ff, and the all-zero address, which hostapd reads as
 * "any station", are rejected.
 */
export function validateMac(value: unknown): string {
  const invalid = (reason: string) => invalidField("mac", `"mac" ${reason}`);
  if (
    typeof value !== "string" ||
    !/^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$/.test(value)
  ) {
    throw invalid('must be a MAC address such as "02:11:22:33:44:55"');
  }
  const mac = value.toLowerCase().replaceAll("-", ":");
  if (mac === "00:00:00:00:00:00") throw invalid("must not be the all-zero address");
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw invalid("must be a unicast address (the lowest bit of the first octet clear)");
  }
  return mac;
}

/** Validates a VLAN ID: 1 to 4094. */
export function validateVlan(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 4094) {
    throw invalidField(field, `"${field}" must be a VLAN ID from 1 to 4094`);
  }
  return value;
}

/** Validates a key ID: 1-31 of letters, digits, "_" and "-", starting with a letter or digit. */
export function validateKeyId(value: unknown): string {
  if (typeof value !== "string" || !KEY_ID.test(value)) {
    throw invalidField(
      "key_id",
      `"key_id" must be 1-${MAX_KEY_ID_LENGTH} letters, digits, "_" and "-", starting with a letter or digit`,
    );
  }
  return value;
}

/** Validates an SAE password identifier stem: 1-32 of letters, digits, "_" and "-". */
export function validateToken(value: unknown, field: string): string {
  if (typeof value !== "string" || !TOKEN.test(value)) {
    throw invalidField(
      field,
      `"${field}" must be 1-32 letters, digits, "_" and "-", starting with a letter or digit`,
    );
  }
  return value;
}

/** Validates a device or group name as the device registry spells them. */
export function validateDeviceName(value: unknown, field: string): string {
  if (typeof value !== "string" || !DEVICE_NAME.test(value)) {
    throw invalidField(
      field,
      `"${field}" must contain device or group names: 1-63 letters, digits, "_", "." and "-"`,
    );
  }
  return value;
}
