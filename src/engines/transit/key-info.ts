import { effectiveState, publicKeyInfo, rsaOaepHashOf, supports } from "../../keys/index.ts";
import type { KeyType, ManagedKey } from "../../keys/types.ts";
import type { KeyInfo } from "./types.ts";

/** Key types whose operations can take a derivation `context` (Vault's `supports_derivation`). */
const DERIVATION_TYPES: readonly KeyType[] = [
  "aes128-gcm96",
  "aes256-gcm96",
  "chacha20-poly1305",
  "ed25519",
];

const ASYMMETRIC_TYPES: readonly KeyType[] = [
  "ed25519",
  "ecdsa-p256",
  "ecdsa-p384",
  "ecdsa-p521",
  "rsa-2048",
  "rsa-3072",
  "rsa-4096",
];

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** Describes a key as Vault's read endpoint does, with Keyward's lifecycle fields added. */
export function describeKey(key: ManagedKey, now: Date): KeyInfo {
  let keys: KeyInfo["keys"];
  if (ASYMMETRIC_TYPES.includes(key.type)) {
    keys = publicKeyInfo(key);
  } else {
    keys = {};
    for (const [version, entry] of Object.entries(key.versions)) {
      keys[version] = unixSeconds(entry.createdAt);
    }
  }

  const info: KeyInfo = {
    name: key.name,
    type: key.type,
    derived: key.derived,
    convergentEncryption: key.convergentEncryption,
    exportable: key.exportable,
    allowPlaintextBackup: key.allowPlaintextBackup,
    deletionAllowed: key.deletionAllowed,
    keys,
    latestVersion: key.latestVersion,
    minAvailableVersion: key.minAvailableVersion,
    minDecryptionVersion: key.minDecryptionVersion,
    minEncryptionVersion: key.minEncryptionVersion,
    supportsEncryption: supports(key.type, "encrypt"),
    supportsDecryption: supports(key.type, "decrypt"),
    supportsDerivation: DERIVATION_TYPES.includes(key.type),
    supportsSigning: supports(key.type, "sign"),
    imported: key.imported === true,
    hsm: key.hsm === true,
    autoRotatePeriod: key.autoRotatePeriod,
    state: effectiveState(key, now),
    activationDate: key.activationDate ?? null,
    deletionDate: key.deletionDate ?? null,
    compromisedAt: key.compromisedAt ?? null,
    deactivatedAt: key.deactivatedAt ?? null,
    destroyedAt: key.destroyedAt ?? null,
  };
  // Vault reports the key derivation function only for derived keys.
  if (key.derived) info.kdf = "hkdf_sha256";
  if (key.keySize !== undefined) info.keySize = key.keySize;
  if (key.imported === true) info.allowRotation = key.allowRotation === true;
  if (key.type.startsWith("rsa-")) info.rsaOaepHash = rsaOaepHashOf(key);
  return info;
}
