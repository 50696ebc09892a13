import type { KeyObject } from "node:crypto";
import type { HashAlgorithm } from "../../crypto/hash.ts";
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
import type { KeyType, KeyVersion } from "../types.ts";
import {
  checkAsymmetricSecret,
  checkPrehashedInput,
  generateAsymmetricVersion,
  rejectJwsMarshaling,
} from "./asymmetric.ts";
import type { EncryptParams, KeyTypeDefinition, SignParams } from "./definition.ts";
import { versionPrivateKey, versionPublicKey } from "./material.ts";

/** RSA keys encrypt with RSAES-OAEP, SHA-256 for both the label hash and MGF1, as Vault does. */
export const RSA_OAEP_HASH: HashAlgorithm = "sha2-256";

/**
 * Checks the signing options of a request for an RSA key and returns them
 * as `rsaSign` takes them. Throws `invalid_field` or `unsupported_operation`
 * naming the field at fault.
 */
export function rsaSignOptions(type: KeyType, key: KeyObject, params: SignParams): RsaSignOptions {
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
      encrypt: (version, params) => rsaOaepEncryptVersion(type, version, params, RSA_OAEP_HASH),
      decrypt(version, params) {
        rejectAssociatedData(type, params.associatedData);
        return rsaOaepDecrypt(versionPrivateKey(version), params.payload, RSA_OAEP_HASH);
      },
    },
    signer: {
      sign(version, params) {
        const privateKey = versionPrivateKey(version);
        const options = rsaSignOptions(type, privateKey, params);
        return { signature: rsaSign(privateKey, params.input, options) };
      },
      verify(version, params, signature) {
        const publicKey = versionPublicKey(version);
        return rsaVerify(
          publicKey,
          params.input,
          signature,
          rsaSignOptions(type, publicKey, params),
        );
      },
    },
  };
}

/** Throws `invalid_field` ("associated_data") when a request for an RSA key carries associated data. */
export function rejectAssociatedData(type: KeyType, associatedData: Buffer | undefined): void {
  if (associatedData !== undefined) {
    throw new KeywardError(
      "invalid_field",
      `${type} keys encrypt with RSA-OAEP, which takes no associated_data`,
      { field: "associated_data" },
    );
  }
}

/**
 * Encrypts with the version's public key under RSAES-OAEP, `hash` for both
 * the label hash and MGF1. Throws `invalid_field` naming `plaintext` when
 * it is too long for the key and hash, or `associated_data` when present.
 */
export function rsaOaepEncryptVersion(
  type: KeyType,
  version: KeyVersion,
  params: EncryptParams,
  hash: HashAlgorithm,
): Buffer {
  rejectAssociatedData(type, params.associatedData);
  const publicKey = versionPublicKey(version);
  const max = maxOaepPlaintextLength(publicKey, hash);
  if (params.plaintext.length > max) {
    throw new KeywardError(
      "invalid_field",
      `plaintext must be at most ${max} bytes for a ${type} key (RSA-OAEP with ${hash})`,
      { field: "plaintext" },
    );
  }
  return rsaOaepEncrypt(publicKey, params.plaintext, hash);
}
