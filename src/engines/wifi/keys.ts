import { KeywardError } from "../../errors.ts";
import { nextCredential } from "./credentials.ts";
import { generatePassphrase } from "./passphrase.ts";
import { checkWpaPskLineLength } from "./psk-line-length.ts";
import { type KeyRecord, type NetworkRecord, usesPassphrase } from "./types.ts";
import {
  MAX_KEY_ID_LENGTH,
  validateDeviceName,
  validateKeyId,
  validateMac,
  validateToken,
  validateVlan,
} from "./validation.ts";

/** A key write as the routes pass it. Undefined fields keep their values, and null removes an optional one. */
export interface KeyInput {
  mac?: unknown;
  keyId?: unknown;
  vlan?: unknown;
  saePasswordId?: unknown;
  deviceId?: unknown;
}

/**
 * Returns the key record that results from applying `input` to key `name`
 * of `network`, creating it with a passphrase drawn to the network's policy
 * when it does not exist. Checks that the MAC address is not bound to
 * another key of the network (`mac_address_conflict`), that no other key has
 * the same key ID or SAE password identifier stem (`already_exists`), and
 * that the VLAN is one of the network's (`unknown_vlan`), and that its
 * `wpa_psk_file` lines fit hostapd's line length (`invalid_field`). The key ID
 * defaults to the key name with "." replaced by "_", so a key whose name
 * is longer than `MAX_KEY_ID_LENGTH` needs an explicit `key_id`.
 */
export function writeKeyRecord(
  network: NetworkRecord,
  keys: readonly KeyRecord[],
  name: string,
  input: KeyInput,
  now: Date,
): KeyRecord {
  if (!usesPassphrase(network.security)) {
    throw new KeywardError(
      "invalid_state",
      `network "${network.name}" is ${network.security}, which has no per-device keys`,
      { field: "security" },
    );
  }
  const existing = keys.find((key) => key.name === name);
  if (!existing && input.mac === undefined) {
    throw new KeywardError("missing_field", 'missing required field "mac"', { field: "mac" });
  }
  const key: KeyRecord = existing
    ? structuredClone(existing)
    : {
        name,
        mac: "",
        keyId: name.replace(/[^A-Za-z0-9_-]/g, "_"),
        credential: nextCredential(undefined, generatePassphrase(network.passphrasePolicy), now, 0),
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
      };

  if (input.mac !== undefined) key.mac = validateMac(input.mac);
  if (input.keyId !== undefined) key.keyId = validateKeyId(input.keyId);
  else if (key.keyId.length > MAX_KEY_ID_LENGTH) {
    // A default key ID is the key name, and cutting it short could give two keys the same ID.
    throw new KeywardError(
      "invalid_field",
      existing
        ? `the key ID "${key.keyId}" of key "${name}" is longer than ${MAX_KEY_ID_LENGTH} characters, which hostapd rejects; set "key_id" to 1-${MAX_KEY_ID_LENGTH} characters`
        : `key name "${name}" is longer than ${MAX_KEY_ID_LENGTH} characters, so it cannot be the key ID; set "key_id" to 1-${MAX_KEY_ID_LENGTH} characters`,
      { field: "key_id" },
    );
  }
  if (input.vlan === null) delete key.vlan;
  else if (input.vlan !== undefined) {
    const vlan = validateVlan(input.vlan, "vlan");
    if (!network.vlans.includes(vlan)) {
      throw new KeywardError(
        "unknown_vlan",
        `"vlan" ${vlan} is not in the VLAN list of network "${network.name}" (${network.vlans.join(", ") || "empty"})`,
        { field: "vlan" },
      );
    }
    key.vlan = vlan;
  }
  if (input.saePasswordId === null) delete key.saePasswordId;
  else if (input.saePasswordId !== undefined) {
    key.saePasswordId = validateToken(input.saePasswordId, "sae_password_id");
  }
  if (input.deviceId === null) delete key.deviceId;
  else if (input.deviceId !== undefined) {
    key.deviceId = validateDeviceName(input.deviceId, "device_id");
  }

  const other = keys.find((candidate) => candidate.name !== name && candidate.mac === key.mac);
  if (other) {
    throw new KeywardError(
      "mac_address_conflict",
      `"mac" ${key.mac} is already bound to key "${other.name}" of network "${network.name}"`,
      { field: "mac" },
    );
  }
  const sameKeyId = keys.find(
    (candidate) => candidate.name !== name && candidate.keyId === key.keyId,
  );
  if (sameKeyId) {
    throw new KeywardError(
      "already_exists",
      `"key_id" ${key.keyId} is already used by key "${sameKeyId.name}" of network "${network.name}"; set another "key_id"`,
      { field: "key_id" },
    );
  }
  if (key.saePasswordId !== undefined) {
    const clash = keys.find(
      (candidate) => candidate.name !== name && candidate.saePasswordId === key.saePasswordId,
    );
    if (clash) {
      throw new KeywardError(
        "already_exists",
        `"sae_password_id" ${key.saePasswordId} is already used by key "${clash.name}"`,
        { field: "sae_password_id" },
      );
    }
  }
  const lengthField = input.keyId === undefined && input.vlan !== undefined ? "vlan" : "key_id";
  checkWpaPskLineLength(network, key, lengthField);
  key.updatedAt = now.toISOString();
  return key;
}
