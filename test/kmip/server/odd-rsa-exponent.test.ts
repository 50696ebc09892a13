import assert from "node:assert/strict";
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  generatePrimeSync,
  type KeyObject,
} from "node:crypto";
import { describe, it } from "node:test";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { bytes, bytesOf, child, enumItem, struct, text } from "../../../src/kmip/server/items.ts";
import {
  call,
  newDispatcher,
  payloadOf,
  registerKey,
  resultReason,
  resultStatus,
  uidOf,
} from "./helpers.ts";

const modulusJwk = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
  format: "jwk",
});

/**
 * Builds a 2048-bit RSA private key whose public exponent is `exponentHex`.
 * The private exponents are 1, which Node.js does not check on import, so
 * the key only serves to carry the exponent.
 */
function rsaKeyWithExponent(exponentHex: string): KeyObject {
  const e = Buffer.from(exponentHex, "hex").toString("base64url");
  return createPrivateKey({
    format: "jwk",
    key: { ...modulusJwk, e, d: "AQ", dp: "AQ", dq: "AQ" },
  });
}

/** Returns x with a*x = 1 modulo m, for coprime a and m. */
function inverseMod(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, sCoefficient] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, sCoefficient] = [sCoefficient, oldS - quotient * sCoefficient];
  }
  return ((oldS % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  return b === 0n ? a : gcd(b, a % b);
}

function base64urlOf(value: bigint): string {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex").toString("base64url");
}

/**
 * Builds a consistent 2048-bit RSA private key with public exponent `e`.
 * Node.js generates RSA keys only with exponents below 2^32, so the primes
 * come from `generatePrimeSync` and the private values are computed here.
 */
function validRsaKeyWithExponent(e: bigint): KeyObject {
  const prime = (): bigint => {
    for (;;) {
      const candidate = generatePrimeSync(1024, { bigint: true });
      if (gcd(e, candidate - 1n) === 1n) return candidate;
    }
  };
  const p = prime();
  let q = prime();
  while (q === p) q = prime();
  const d = inverseMod(e, ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n));
  const jwk = {
    kty: "RSA",
    n: base64urlOf(p * q),
    e: base64urlOf(e),
    d: base64urlOf(d),
    p: base64urlOf(p),
    q: base64urlOf(q),
    dp: base64urlOf(d % (p - 1n)),
    dq: base64urlOf(d % (q - 1n)),
    qi: base64urlOf(inverseMod(q, p)),
  };
  return createPrivateKey({ key: jwk, format: "jwk" });
}

function registerRsa(
  dispatcher: ReturnType<typeof newDispatcher>,
  objectType: "PrivateKey" | "PublicKey",
  format: string,
  material: Buffer,
): Promise<StructureItem> {
  return registerKey(dispatcher, objectType, format, material, "RSA", 2048);
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: "der", type: "spki" });
}

describe("KMIP RSA keys with odd public exponents", () => {
  const invalidExponents: [string, string][] = [
    ["exponent 1", "01"],
    ["exponent 2", "02"],
    ["even exponent 65536", "010000"],
  ];
  for (const [name, exponentHex] of invalidExponents) {
    it(`Register rejects private key with ${name}`, async () => {
      const key = rsaKeyWithExponent(exponentHex);
      const item = await registerRsa(
        newDispatcher(),
        "PrivateKey",
        "PKCS_1",
        key.export({ format: "der", type: "pkcs1" }),
      );
      assert.equal(resultReason(item), "InvalidField");
    });

    it(`Register rejects public key with ${name}`, async () => {
      const item = await registerRsa(
        newDispatcher(),
        "PublicKey",
        "X_509",
        spkiOf(rsaKeyWithExponent(exponentHex)),
      );
      assert.equal(resultReason(item), "InvalidField");
    });
  }

  it("Encrypt under exponent 1 hides plaintext", async () => {
    // With e = 1, m^e mod n = m, so a PKCS#1 v1.5 ciphertext ends in the plaintext.
    const dispatcher = newDispatcher();
    const registered = await registerRsa(
      dispatcher,
      "PublicKey",
      "X_509",
      spkiOf(rsaKeyWithExponent("01")),
    );
    if (resultStatus(registered) !== "Success") return;

    const plaintext = Buffer.from("top secret payload");
    const encrypted = await call(dispatcher, "Encrypt", [
      text("UniqueIdentifier", uidOf(payloadOf(registered))),
      struct("CryptographicParameters", [enumItem("PaddingMethod", "PKCS1V1_5")]),
      bytes("Data", plaintext),
    ]);
    if (resultStatus(encrypted) !== "Success") return;

    const ciphertext = Buffer.from(bytesOf(child(payloadOf(encrypted), "Data")!));
    assert.equal(ciphertext.includes(plaintext), false, "the ciphertext contains the plaintext");
  });

  const rekeyExponents: [string, bigint][] = [
    ["exponent 2^32 + 1", 2n ** 32n + 1n],
    ["exponent 2^64 + 1", 2n ** 64n + 1n],
  ];
  for (const [name, exponent] of rekeyExponents) {
    it(`Re-key Key Pair with ${name} fails cleanly`, async () => {
      const dispatcher = newDispatcher();
      const key = validRsaKeyWithExponent(exponent);
      const registered = await registerRsa(
        dispatcher,
        "PrivateKey",
        "PKCS_1",
        key.export({ format: "der", type: "pkcs1" }),
      );
      const uid = uidOf(payloadOf(registered));

      const item = await call(dispatcher, "ReKeyKeyPair", [
        text("PrivateKeyUniqueIdentifier", uid),
      ]);
      assert.equal(resultStatus(item), "OperationFailed");
      assert.notEqual(resultReason(item), "GeneralFailure");
    });
  }
});
