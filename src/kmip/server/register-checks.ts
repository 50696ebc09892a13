/**
 * Checks of key material that a client registers, so that a key that
 * does not match its attributes fails at Register with Invalid Field
 * instead of at its first use. Formats Keyward does not read (wrapped
 * keys, transparent asymmetric keys, other algorithms) are left alone.
 */
import type { KeyObject } from "node:crypto";
import { checkKeyPair } from "../../crypto/key-safety.ts";
import { enumerationForTag } from "../tags.ts";
import { KmipOperationError } from "./errors.ts";
import { tag } from "./items.ts";
import { privateKeyOf, publicKeyOf, secretBytes } from "./material.ts";
import type { KmipObject } from "./object-store.ts";
import { attributeScalar } from "./objects.ts";

/** The largest RSA modulus Register accepts, in bits, as Create Key Pair makes. */
const MAX_RSA_BITS = 8192;

const AES_KEY_BYTES = new Set([16, 24, 32]);

function invalid(message: string): KmipOperationError {
  return new KmipOperationError("InvalidField", message);
}

function algorithmOf(object: KmipObject): string | undefined {
  const value = attributeScalar(object, "Cryptographic Algorithm");
  return typeof value === "number"
    ? enumerationForTag(tag("CryptographicAlgorithm"))?.byValue.get(value)
    : undefined;
}

/** Throws Invalid Field when registered key material does not fit its algorithm and length. */
export function checkRegisteredKey(object: KmipObject): void {
  if (object.objectType === "SymmetricKey") checkSymmetricKey(object);
  else if (object.objectType === "PrivateKey" || object.objectType === "PublicKey") {
    checkAsymmetricKey(object);
  }
}

function checkSymmetricKey(object: KmipObject): void {
  if (algorithmOf(object) !== "AES") return;
  let key: Buffer;
  try {
    key = secretBytes(object);
  } catch {
    return;
  }
  if (!AES_KEY_BYTES.has(key.length)) {
    throw invalid(`an AES key has 16, 24 or 32 bytes, and this one has ${key.length}`);
  }
  const length = attributeScalar(object, "Cryptographic Length");
  if (typeof length === "number" && length !== key.length * 8) {
    throw invalid(
      `Cryptographic Length is ${length}, but the key material has ${key.length * 8} bits`,
    );
  }
}

function checkAsymmetricKey(object: KmipObject): void {
  let key: KeyObject;
  try {
    key = object.objectType === "PrivateKey" ? privateKeyOf(object) : publicKeyOf(object);
  } catch (error) {
    if (error instanceof KmipOperationError && error.resultReason === "CryptographicFailure") {
      throw invalid(`the ${object.objectType} material cannot be parsed in its Key Format Type`);
    }
    return;
  }
  const algorithm = algorithmOf(object);
  let expected: string | undefined;
  if (algorithm === "RSA") expected = "rsa";
  else if (algorithm === "EC" || algorithm === "ECDSA") expected = "ec";
  if (expected !== undefined && key.asymmetricKeyType !== expected) {
    throw invalid(
      `Cryptographic Algorithm is ${algorithm}, but the key material is a ${key.asymmetricKeyType} key`,
    );
  }
  const length = attributeScalar(object, "Cryptographic Length");
  const bits = key.asymmetricKeyDetails?.modulusLength;
  // Larger keys make every operation on them (and a Re-key Key Pair, which
  // generates the same size) slow enough to hold the server.
  if (bits !== undefined && bits > MAX_RSA_BITS) {
    throw invalid(`the RSA modulus has ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
  }
  if (expected === "rsa" && typeof length === "number" && bits !== undefined && length !== bits) {
    throw invalid(`Cryptographic Length is ${length}, but the RSA modulus has ${bits} bits`);
  }
  if (object.objectType === "PrivateKey" && PAIR_CHECKED_TYPES.has(key.asymmetricKeyType ?? "")) {
    try {
      checkKeyPair(key);
    } catch {
      throw invalid("the private key does not match the public key it contains");
    }
  }
}

/** Private key types whose halves Register checks against each other, by signing. */
const PAIR_CHECKED_TYPES = new Set(["rsa", "ec", "ed25519"]);
