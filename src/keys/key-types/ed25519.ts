import type { KeyObject } from "node:crypto";
import {
  ed25519PrivateKeyFromSeed,
  ed25519SeedOf,
  loadPrivateKey,
  publicKeyPemOf,
} from "../../crypto/asymmetric-keys.ts";
import { ed25519Sign, ed25519Verify } from "../../crypto/ed25519.ts";
import { hkdfSha256 } from "../../crypto/hkdf.ts";
import { KeywardError } from "../../errors.ts";
import type { KeyVersion } from "../types.ts";
import {
  checkAsymmetricSecret,
  generateAsymmetricVersion,
  rejectJwsMarshaling,
} from "./asymmetric.ts";
import type { KeyTypeDefinition, SignParams } from "./definition.ts";
import { versionPrivateKey, versionPublicKey } from "./material.ts";

const SPEC = { algorithm: "ed25519" } as const;

/**
 * Returns the signing key for one operation: the version key, or for derived
 * keys the key whose seed is HKDF-SHA256(version seed, empty salt, info = context).
 */
function signingKey(version: KeyVersion, context?: Buffer): KeyObject {
  const privateKey = versionPrivateKey(version);
  if (context === undefined) return privateKey;
  const seed = hkdfSha256(ed25519SeedOf(privateKey), Buffer.alloc(0), context, 32);
  return loadPrivateKey(ed25519PrivateKeyFromSeed(seed));
}

function checkParams(params: SignParams): void {
  rejectJwsMarshaling("ed25519", params);
  if (params.prehashed) {
    throw new KeywardError(
      "unsupported_operation",
      "ed25519 keys sign the message itself (pure Ed25519); prehashed input is not supported",
    );
  }
}

/** The Ed25519 key type: pure Ed25519 (RFC 8032), which ignores the hash algorithm. */
export const ED25519_KEY_TYPE: KeyTypeDefinition = {
  type: "ed25519",
  derivation: true,
  convergentEncryption: false,
  exportKinds: ["signing-key", "public-key"],
  secretExportFormat: "pkcs8-pem",
  publicKeyName: "ed25519",
  asymmetricSpec: SPEC,
  generateVersion: () => generateAsymmetricVersion(SPEC),
  checkSecret: (version) => checkAsymmetricSecret(version, SPEC),
  signer: {
    sign(version, params) {
      checkParams(params);
      const privateKey = signingKey(version, params.context);
      const signature = ed25519Sign(privateKey, params.input);
      if (params.context === undefined) return { signature };
      return { signature, publicKeyPem: publicKeyPemOf(privateKey) };
    },
    verify(version, params, signature) {
      checkParams(params);
      const publicKey =
        params.context === undefined
          ? versionPublicKey(version)
          : signingKey(version, params.context);
      return ed25519Verify(publicKey, params.input, signature);
    },
  },
};
