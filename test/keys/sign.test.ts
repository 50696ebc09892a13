import assert from "node:assert/strict";
import { constants, createPublicKey, verify as nodeVerify } from "node:crypto";
import { describe, it } from "node:test";
import { digest } from "../../src/crypto/hash.ts";
import {
  configureKey,
  HASH_ALGORITHMS,
  type ManagedKey,
  parseVersionedValue,
  rotateKey,
  sign,
  transitionState,
  verify,
} from "../../src/keys/index.ts";
import { expectError, makeKey, NOW } from "./fixtures.ts";

const SIGNING_TYPES = ["ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048"] as const;
const input = Buffer.from("the quick brown fox");

function signatureBytes(signature: string, encoding: "base64" | "base64url" = "base64"): Buffer {
  return parseVersionedValue(signature, "signature", "invalid_signature", encoding).bytes;
}

function publicKeyOf(key: ManagedKey, version = 1) {
  return createPublicKey(key.versions[String(version)]!.publicKeyPem!);
}

describe("sign and verify", () => {
  for (const type of SIGNING_TYPES) {
    it(`${type} round trip`, () => {
      const key = makeKey(type);
      const before = structuredClone(key);
      const signed = sign(key, { input }, NOW);
      assert.equal(signed.keyVersion, 1);
      assert.equal(signed.publicKeyPem, undefined);
      assert.deepEqual(verify(key, { input, signature: signed.signature }, NOW), {
        valid: true,
        keyVersion: 1,
      });
      assert.equal(
        verify(key, { input: Buffer.from("other"), signature: signed.signature }, NOW).valid,
        false,
      );
      assert.deepEqual(key, before);
    });

    it(`${type} tampered signature invalid`, () => {
      const key = makeKey(type);
      const bytes = signatureBytes(sign(key, { input }, NOW).signature);
      for (const index of [0, Math.floor(bytes.length / 2), bytes.length - 1]) {
        const copy = Buffer.from(bytes);
        copy[index] = (copy[index] ?? 0) ^ 0x01;
        assert.equal(
          verify(key, { input, signature: `keyward:v1:${copy.toString("base64")}` }, NOW).valid,
          false,
        );
      }
      const truncated = `keyward:v1:${bytes.subarray(1).toString("base64")}`;
      assert.equal(verify(key, { input, signature: truncated }, NOW).valid, false);
    });
  }

  for (const type of ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"] as const) {
    it(`${type} every hash and encoding`, () => {
      const key = makeKey(type);
      const publicKey = publicKeyOf(key);
      for (const hashAlgorithm of HASH_ALGORITHMS) {
        for (const marshalingAlgorithm of ["asn1", "jws"] as const) {
          const encoding = marshalingAlgorithm === "jws" ? "base64url" : "base64";
          const dsaEncoding = marshalingAlgorithm === "jws" ? "ieee-p1363" : "der";
          const nodeHash = hashAlgorithm.replace("sha2-", "sha");
          for (const prehashed of [false, true]) {
            const message = prehashed ? digest(hashAlgorithm, input) : input;
            const options = { input: message, hashAlgorithm, marshalingAlgorithm, prehashed };
            const { signature } = sign(key, options, NOW);
            const label = `${hashAlgorithm} ${marshalingAlgorithm} prehashed=${prehashed}`;
            assert.equal(verify(key, { ...options, signature }, NOW).valid, true, label);
            // Both paths produce standard signatures over the message.
            const bytes = signatureBytes(signature, encoding);
            assert.ok(nodeVerify(nodeHash, input, { key: publicKey, dsaEncoding }, bytes), label);
          }
        }
      }
    });
  }

  it("ecdsa jws is raw base64url", () => {
    const { signature } = sign(makeKey("ecdsa-p256"), { input, marshalingAlgorithm: "jws" }, NOW);
    assert.match(signature, /^keyward:v1:[A-Za-z0-9_-]{86}$/);
  });

  it("fail jws on other types", () => {
    for (const type of ["ed25519", "rsa-2048"] as const) {
      expectError(
        () => sign(makeKey(type), { input, marshalingAlgorithm: "jws" }, NOW),
        "invalid_field",
        "marshaling_algorithm",
      );
    }
  });

  it("fail prehashed input length", () => {
    expectError(
      () => sign(makeKey("ecdsa-p256"), { input, prehashed: true, hashAlgorithm: "sha2-256" }, NOW),
      "invalid_field",
      "input",
    );
  });

  it("rsa pss and pkcs1v15 variants", () => {
    const key = makeKey("rsa-2048");
    const publicKey = publicKeyOf(key);
    for (const hashAlgorithm of HASH_ALGORITHMS) {
      const nodeHash = hashAlgorithm.replace("sha2-", "sha");
      const pkcs = sign(
        key,
        { input, hashAlgorithm, signatureAlgorithm: "pkcs1v15" },
        NOW,
      ).signature;
      assert.ok(
        nodeVerify(
          nodeHash,
          input,
          { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
          signatureBytes(pkcs),
        ),
        hashAlgorithm,
      );
      assert.equal(
        verify(key, { input, hashAlgorithm, signatureAlgorithm: "pkcs1v15", signature: pkcs }, NOW)
          .valid,
        true,
      );
      assert.equal(
        verify(key, { input, hashAlgorithm, signatureAlgorithm: "pss", signature: pkcs }, NOW)
          .valid,
        false,
      );

      const prehashed = sign(
        key,
        {
          input: digest(hashAlgorithm, input),
          hashAlgorithm,
          signatureAlgorithm: "pkcs1v15",
          prehashed: true,
        },
        NOW,
      );
      // PKCS#1 v1.5 is deterministic, so the prehashed path must give the same bytes.
      assert.equal(prehashed.signature, pkcs, `${hashAlgorithm} prehashed`);
      assert.equal(
        verify(
          key,
          {
            input: digest(hashAlgorithm, input),
            hashAlgorithm,
            signatureAlgorithm: "pkcs1v15",
            prehashed: true,
            signature: pkcs,
          },
          NOW,
        ).valid,
        true,
      );
    }
  });

  it("rsa pss salt lengths", () => {
    const key = makeKey("rsa-2048");
    const publicKey = publicKeyOf(key);
    const cases: ["auto" | "hash" | number, number][] = [
      ["auto", 256 - 32 - 2],
      ["hash", 32],
      [0, 0],
      [20, 20],
    ];
    for (const [saltLength, expected] of cases) {
      const { signature } = sign(key, { input, saltLength }, NOW);
      const bytes = signatureBytes(signature);
      assert.ok(
        nodeVerify(
          "sha256",
          input,
          { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: expected },
          bytes,
        ),
        String(saltLength),
      );
      assert.equal(
        verify(key, { input, signature }, NOW).valid,
        true,
        "auto accepts any salt length",
      );
      assert.equal(verify(key, { input, signature, saltLength }, NOW).valid, true);
    }
    const hashSalted = sign(key, { input, saltLength: "hash" }, NOW).signature;
    assert.equal(verify(key, { input, signature: hashSalted, saltLength: 20 }, NOW).valid, false);
    expectError(() => sign(key, { input, saltLength: 223 }, NOW), "invalid_field", "salt_length");
    expectError(() => sign(key, { input, saltLength: -1 }, NOW), "invalid_field", "salt_length");
    expectError(
      () => sign(key, { input, saltLength: "max" as "auto" }, NOW),
      "invalid_field",
      "salt_length",
    );
  });

  it("fail prehashed rsa pss", () => {
    const error = expectError(
      () => sign(makeKey("rsa-2048"), { input: digest("sha2-256", input), prehashed: true }, NOW),
      "unsupported_operation",
    );
    assert.match(error.message, /rsa-2048/);
  });

  it("ed25519 ignores hash algorithm", () => {
    const key = makeKey("ed25519");
    const { signature } = sign(key, { input, hashAlgorithm: "sha2-512" }, NOW);
    assert.ok(nodeVerify(null, input, publicKeyOf(key), signatureBytes(signature)));
    assert.equal(verify(key, { input, signature, hashAlgorithm: "sha1" }, NOW).valid, true);
    expectError(
      () => sign(key, { input: digest("sha2-512", input), prehashed: true }, NOW),
      "unsupported_operation",
    );
  });

  it("ed25519 derived keys per context", () => {
    const key = makeKey("ed25519", { derived: true });
    const context = Buffer.from("device-17");
    const signed = sign(key, { input, context }, NOW);
    assert.ok(signed.publicKeyPem?.startsWith("-----BEGIN PUBLIC KEY-----"));
    assert.notEqual(signed.publicKeyPem, key.versions["1"]!.publicKeyPem);
    assert.ok(
      nodeVerify(
        null,
        input,
        createPublicKey(signed.publicKeyPem!),
        signatureBytes(signed.signature),
      ),
    );
    assert.equal(
      sign(key, { input, context }, NOW).publicKeyPem,
      signed.publicKeyPem,
      "derivation is deterministic",
    );
    assert.equal(verify(key, { input, context, signature: signed.signature }, NOW).valid, true);
    assert.equal(
      verify(key, { input, context: Buffer.from("device-18"), signature: signed.signature }, NOW)
        .valid,
      false,
    );
    expectError(() => sign(key, { input }, NOW), "missing_field", "context");
  });

  it("fail context on plain key", () => {
    expectError(
      () => sign(makeKey("ecdsa-p256"), { input, context: Buffer.from("x") }, NOW),
      "invalid_field",
      "context",
    );
  });

  it("fail option values", () => {
    const key = makeKey("ecdsa-p256");
    expectError(
      () => sign(key, { input, hashAlgorithm: "md5" as "sha1" }, NOW),
      "invalid_field",
      "hash_algorithm",
    );
    expectError(
      () => sign(key, { input, signatureAlgorithm: "raw" as "pss" }, NOW),
      "invalid_field",
      "signature_algorithm",
    );
    expectError(
      () => sign(key, { input, marshalingAlgorithm: "pem" as "asn1" }, NOW),
      "invalid_field",
      "marshaling_algorithm",
    );
  });

  for (const type of ["aes256-gcm96", "chacha20-poly1305", "hmac"] as const) {
    it(`fail sign with ${type}`, () => {
      const error = expectError(() => sign(makeKey(type), { input }, NOW), "unsupported_operation");
      assert.match(error.message, new RegExp(`${type} keys do not support sign`));
      expectError(
        () => verify(makeKey(type), { input, signature: "keyward:v1:AAAA" }, NOW),
        "unsupported_operation",
      );
    });
  }

  it("versions and minimums apply", () => {
    let key = makeKey("ecdsa-p256");
    key = rotateKey(rotateKey(key, NOW), NOW);
    const old = sign(key, { input, keyVersion: 1 }, NOW);
    assert.equal(old.keyVersion, 1);
    assert.equal(sign(key, { input }, NOW).keyVersion, 3);
    assert.deepEqual(verify(key, { input, signature: old.signature }, NOW), {
      valid: true,
      keyVersion: 1,
    });
    const restricted = configureKey(key, { minDecryptionVersion: 2, minEncryptionVersion: 3 }, NOW);
    expectError(
      () => verify(restricted, { input, signature: old.signature }, NOW),
      "version_too_old",
      "signature",
    );
    expectError(
      () => sign(restricted, { input, keyVersion: 2 }, NOW),
      "version_too_old",
      "key_version",
    );
    const missing = old.signature.replace("keyward:v1:", "keyward:v7:");
    expectError(
      () => verify(key, { input, signature: missing }, NOW),
      "invalid_signature",
      "signature",
    );
  });

  it("fail malformed signature", () => {
    const key = makeKey("ed25519");
    for (const signature of ["", "keyward:v1:", "keyward:1:AAAA", "keyward:v1:A"]) {
      expectError(() => verify(key, { input, signature }, NOW), "invalid_signature", "signature");
    }
  });

  it("verifies but never signs when deactivated", () => {
    const key = makeKey("ed25519");
    const { signature } = sign(key, { input }, NOW);
    const compromised = transitionState(key, "compromised", NOW);
    assert.equal(verify(compromised, { input, signature }, NOW).valid, true);
    expectError(() => sign(compromised, { input }, NOW), "invalid_state");
  });
});
