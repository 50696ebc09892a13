import {
  type AsymmetricKeySpec,
  describeKey,
  generateKeyPair,
  loadPrivateKey,
  publicKeyPemOf,
} from "../../crypto/asymmetric-keys.ts";
import { hashLength } from "../../crypto/hash.ts";
import { randomBytes } from "../../crypto/random.ts";
import { KeywardError } from "../../errors.ts";
import type { KeyType, KeyVersion } from "../types.ts";
import type { SignParams, VersionMaterial } from "./definition.ts";
import { secretBytes, VERSION_HMAC_KEY_LENGTH } from "./material.ts";

/** Generates one version of an asymmetric key: PKCS#8 DER secret, SPKI PEM public key and an HMAC key. */
export function generateAsymmetricVersion(spec: AsymmetricKeySpec): VersionMaterial {
  const pair = generateKeyPair(spec);
  return {
    secret: pair.privateKeyDer.toString("base64"),
    publicKeyPem: pair.publicKeyPem,
    hmacKey: randomBytes(VERSION_HMAC_KEY_LENGTH).toString("base64"),
  };
}

/**
 * Throws unless the version's secret is a PKCS#8 private key of `spec` whose
 * public half is the version's stored public key.
 */
export function checkAsymmetricSecret(version: KeyVersion, spec: AsymmetricKeySpec): void {
  const privateKey = loadPrivateKey(secretBytes(version));
  const actual = describeKey(privateKey);
  if (JSON.stringify(actual) !== JSON.stringify(spec)) {
    throw new Error("the private key does not match the key type");
  }
  if (publicKeyPemOf(privateKey) !== version.publicKeyPem) {
    throw new Error("the public key does not match the private key");
  }
}

/** Throws `invalid_field` ("input") when a prehashed input is not a digest of the named hash. */
export function checkPrehashedInput(params: SignParams): void {
  const expected = hashLength(params.hashAlgorithm);
  if (params.prehashed && params.input.length !== expected) {
    throw new KeywardError(
      "invalid_field",
      `a prehashed ${params.hashAlgorithm} input must be ${expected} bytes, got ${params.input.length}`,
      { field: "input" },
    );
  }
}

/** Throws `invalid_field` ("marshaling_algorithm") for JWS marshaling, which only ECDSA keys use. */
export function rejectJwsMarshaling(type: KeyType, params: SignParams): void {
  if (params.marshalingAlgorithm === "jws") {
    throw new KeywardError(
      "invalid_field",
      `marshaling_algorithm "jws" applies only to ECDSA keys, not ${type}`,
      { field: "marshaling_algorithm" },
    );
  }
}
