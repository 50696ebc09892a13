import type { KeyOperation, KeyType } from "../types.ts";
import { aeadKeyType } from "./aead.ts";
import type { KeyTypeDefinition } from "./definition.ts";
import { ecdsaKeyType } from "./ecdsa.ts";
import { ED25519_KEY_TYPE } from "./ed25519.ts";
import { HMAC_KEY_TYPE } from "./hmac.ts";
import { rsaKeyType } from "./rsa.ts";

const KEY_TYPE_DEFINITIONS: Record<KeyType, KeyTypeDefinition> = {
  "aes128-gcm96": aeadKeyType("aes128-gcm96", "aes-128-gcm"),
  "aes256-gcm96": aeadKeyType("aes256-gcm96", "aes-256-gcm"),
  "chacha20-poly1305": aeadKeyType("chacha20-poly1305", "chacha20-poly1305"),
  ed25519: ED25519_KEY_TYPE,
  "ecdsa-p256": ecdsaKeyType("ecdsa-p256", "P-256"),
  "ecdsa-p384": ecdsaKeyType("ecdsa-p384", "P-384"),
  "ecdsa-p521": ecdsaKeyType("ecdsa-p521", "P-521"),
  "rsa-2048": rsaKeyType("rsa-2048", 2048),
  "rsa-3072": rsaKeyType("rsa-3072", 3072),
  "rsa-4096": rsaKeyType("rsa-4096", 4096),
  hmac: HMAC_KEY_TYPE,
};

export function keyTypeDefinition(type: KeyType): KeyTypeDefinition {
  return KEY_TYPE_DEFINITIONS[type];
}

/**
 * Returns whether keys of `type` can perform `operation`. Every type supports
 * hmac, hmac-verify, export (at least its HMAC key) and rotate.
 */
export function supports(type: KeyType, operation: KeyOperation): boolean {
  const definition = KEY_TYPE_DEFINITIONS[type];
  switch (operation) {
    case "encrypt":
    case "decrypt":
      return definition.encryptor !== undefined;
    case "sign":
    case "verify":
      return definition.signer !== undefined;
    case "hmac":
    case "hmac-verify":
    case "export":
    case "rotate":
      return true;
  }
}

export type {
  DecryptParams,
  EncryptParams,
  KeyTypeDefinition,
  MarshalingAlgorithm,
  SignOutput,
  SignParams,
  VersionMaterial,
} from "./definition.ts";
