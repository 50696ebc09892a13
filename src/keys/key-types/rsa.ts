import type { KeyObject } from "node:crypto";
import { loadPrivateKey, loadPublicKey } from "../../crypto/asymmetric-keys.ts";
import {
  maxOaepPlaintextLength,
  maxPssSaltLength,
  type RsaSignOptions,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
  rsaSign,
  rsaVerify,
} from "../../crypto/rsa.ts";
import { KeywardError } from "../../errors.ts";
import type { KeyType } from "../types.ts";
import {
  checkAsymmetricSecret,
  checkPrehashedInput,
  generateAsymmetricVersion,
  rejectJwsMarshaling,
} from "./asymmetric.ts";
import type { KeyTypeDefinition, SignParams } from "./definition.ts";
import { publicKeyPem, secretBytes } from "./material.ts";

/** RSA keys encrypt with RSAES-OAEP, SHA-256 for both the label hash and MGF1, as Vault does. */
const OAEP_HASH = "sha2-256";

function signOptions(type: KeyType, key: KeyObject, params: SignParams): RsaSignOptions {
  rejectJwsMarshaling(type, params);
  checkPrehashedInput(params);
  if (params.prehashed && params.signatureAlgorithm === "pss") {
    // NOTE: node:crypto 20 offers no RSASSA-PSS over a caller-supplied digest.
    throw new KeywardError(
      "unsupported_operation",
      `${type} keys support prehashed input only with signature_algorithm "pkcs1v15"`,
    );
  }
  if (typeof params.saltLength === "number") {
    const max = maxPssSaltLength(key, params.hashAlgorithm);
    if (params.saltLength > max) {
      throw new KeywardError(
        "invalid_field",
        `salt_length must be at most ${max} for a ${type} key with ${params.hashAlgorithm}`,
        { field: "salt_length" },
      );
    }
  }
  return {
    hash: params.hashAlgorithm,
    prehashed: params.prehashed,
    padding: params.signatureAlgorithm,
    saltLength: params.saltLength,
  };
}

/** Builds the definition of an RSA key type with a modulus of `bits` bits. */
export function rsaKeyType(type: KeyType, bits: number): KeyTypeDefinition {
  const spec = { algorithm: "rsa", modulusLength: bits } as const;
  return {
    type,
    derivation: false,
    convergentEncryption: false,
    exportKinds: ["encryption-key", "signing-key", "public-key"],
    secretExportFormat: "pkcs8-pem",
    publicKeyName: type,
    asymmetricSpec: spec,
    generateVersion: () => generateAsymmetricVersion(spec),
    checkSecret: (version) => checkAsymmetricSecret(version, spec),
    encryptor: {
      encrypt(version, params) {
        if (params.associatedData !== undefined) {
          throw new KeywardError(
            "invalid_field",
            `${type} keys encrypt with RSA-OAEP, which takes no associated_data`,
            { field: "associated_data" },
          );
        }
        const publicKey = loadPublicKey(publicKeyPem(version));
        const max = maxOaepPlaintextLength(publicKey, OAEP_HASH);
        if (params.plaintext.length > max) {
          throw new KeywardError(
            "invalid_field",
            `plaintext must be at most ${max} bytes for a ${type} key (RSA-OAEP with SHA-256)`,
            { field: "plaintext" },
          );
        }
        return rsaOaepEncrypt(publicKey, params.plaintext, OAEP_HASH);
      },
      decrypt(version, params) {
        if (params.associatedData !== undefined) {
          throw new KeywardError(
            "invalid_field",
            `${type} keys encrypt with RSA-OAEP, which takes no associated_data`,
            { field: "associated_data" },
          );
        }
        return rsaOaepDecrypt(loadPrivateKey(secretBytes(version)), params.payload, OAEP_HASH);
      },
    },
    signer: {
      sign(version, params) {
        const privateKey = loadPrivateKey(secretBytes(version));
        const options = signOptions(type, privateKey, params);
        return { signature: rsaSign(privateKey, params.input, options) };
      },
      verify(version, params, signature) {
        const publicKey = loadPublicKey(publicKeyPem(version));
        return rsaVerify(publicKey, params.input, signature, signOptions(type, publicKey, params));
      },
    },
  };
}
