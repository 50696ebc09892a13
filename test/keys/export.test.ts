import assert from "node:assert/strict";
import { createDecipheriv, createPrivateKey, createPublicKey } from "node:crypto";
import { describe, it } from "node:test";
import {
  EXPORT_KINDS,
  type ExportKind,
  encrypt,
  exportKey,
  type KeyType,
  parseVersionedValue,
  publicKeyInfo,
  rotateKey,
  transitionState,
} from "../../src/keys/index.ts";
import { after, expectError, makeKey, NOW } from "./fixtures.ts";

/** The kinds each type exports, written out independently of the implementation. */
const KINDS: Record<string, ExportKind[]> = {
  "aes128-gcm96": ["encryption-key", "hmac-key"],
  "aes256-gcm96": ["encryption-key", "hmac-key"],
  "chacha20-poly1305": ["encryption-key", "hmac-key"],
  ed25519: ["signing-key", "hmac-key", "public-key"],
  "ecdsa-p256": ["signing-key", "hmac-key", "public-key"],
  "ecdsa-p384": ["signing-key", "hmac-key", "public-key"],
  "ecdsa-p521": ["signing-key", "hmac-key", "public-key"],
  "rsa-2048": ["encryption-key", "signing-key", "hmac-key", "public-key"],
  hmac: ["hmac-key"],
};

describe("export key", () => {
  for (const [type, kinds] of Object.entries(KINDS)) {
    it(`${type} export kinds`, () => {
      const key = makeKey(type as KeyType, { exportable: true });
      for (const kind of EXPORT_KINDS) {
        if (kinds.includes(kind)) {
          const exported = exportKey(key, kind);
          assert.deepEqual(Object.keys(exported), ["1"], kind);
        } else {
          const error = expectError(() => exportKey(key, kind), "unsupported_operation");
          assert.match(error.message, new RegExp(`${type} keys have no ${kind}`));
        }
      }
    });
  }

  it("aes key decrypts ciphertext", () => {
    const key = makeKey("aes256-gcm96", { exportable: true });
    const rawKey = Buffer.from(exportKey(key, "encryption-key", "latest")["1"]!, "base64");
    assert.equal(rawKey.length, 32);
    const payload = parseVersionedValue(
      encrypt(key, { plaintext: Buffer.from("secret") }, NOW).ciphertext,
      "ciphertext",
      "invalid_ciphertext",
    ).bytes;
    const decipher = createDecipheriv("aes-256-gcm", rawKey, payload.subarray(0, 12));
    decipher.setAuthTag(payload.subarray(payload.length - 16));
    const plaintext = Buffer.concat([
      decipher.update(payload.subarray(12, payload.length - 16)),
      decipher.final(),
    ]);
    assert.equal(plaintext.toString(), "secret");
  });

  it("asymmetric keys export as pem", () => {
    const key = makeKey("ecdsa-p384", { exportable: true });
    const privatePem = exportKey(key, "signing-key", 1)["1"]!;
    assert.match(privatePem, /^-----BEGIN PRIVATE KEY-----\n/);
    const publicPem = exportKey(key, "public-key", 1)["1"]!;
    assert.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n/);
    const derived = createPublicKey(createPrivateKey(privatePem)).export({
      format: "pem",
      type: "spki",
    });
    assert.equal(derived, publicPem);
  });

  it("selects versions", () => {
    const key = rotateKey(rotateKey(makeKey("aes128-gcm96", { exportable: true }), NOW), NOW);
    assert.deepEqual(Object.keys(exportKey(key, "encryption-key")), ["1", "2", "3"]);
    assert.deepEqual(Object.keys(exportKey(key, "encryption-key", "latest")), ["3"]);
    assert.deepEqual(Object.keys(exportKey(key, "encryption-key", 2)), ["2"]);
    expectError(() => exportKey(key, "encryption-key", 4), "not_found");
  });

  it("fail export when not exportable", () => {
    const key = makeKey("ed25519");
    expectError(() => exportKey(key, "signing-key"), "invalid_state");
    expectError(() => exportKey(key, "hmac-key"), "invalid_state");
    assert.deepEqual(Object.keys(exportKey(key, "public-key")), ["1"]);
  });

  it("fail export outside active", () => {
    const key = makeKey("aes256-gcm96", { exportable: true });
    const suspended = transitionState(key, "suspended", NOW);
    expectError(() => exportKey(suspended, "encryption-key"), "invalid_state");
    expectError(() => exportKey(suspended, "encryption-key", undefined, NOW), "invalid_state");
    const staged = {
      ...key,
      state: "pre-active" as const,
      activationDate: after(60).toISOString(),
    };
    expectError(() => exportKey(staged, "encryption-key", 1, NOW), "invalid_state");
    assert.ok(exportKey(staged, "encryption-key", 1, after(60)));
  });

  it("public key survives destruction", () => {
    const key = makeKey("ed25519");
    const destroyed = transitionState(transitionState(key, "deactivated", NOW), "destroyed", NOW);
    assert.equal(exportKey(destroyed, "public-key", 1)["1"], key.versions["1"]!.publicKeyPem);
  });

  it("fail unknown kind", () => {
    expectError(
      () => exportKey(makeKey("hmac"), "private-key" as ExportKind),
      "invalid_field",
      "kind",
    );
  });
});

describe("public key info", () => {
  it("lists asymmetric versions", () => {
    const key = rotateKey(makeKey("ecdsa-p256"), after(5));
    const info = publicKeyInfo(key);
    assert.deepEqual(Object.keys(info), ["1", "2"]);
    assert.deepEqual(info["2"], {
      name: "P-256",
      public_key: key.versions["2"]!.publicKeyPem,
      creation_time: after(5).toISOString(),
    });
    assert.ok(!JSON.stringify(info).includes(key.versions["1"]!.secret!));
  });

  it("symmetric versions show times only", () => {
    assert.deepEqual(publicKeyInfo(makeKey("chacha20-poly1305")), {
      "1": { creation_time: NOW.toISOString() },
    });
  });

  it("names rsa and ed25519 keys", () => {
    assert.equal(publicKeyInfo(makeKey("rsa-2048"))["1"]!.name, "rsa-2048");
    assert.equal(publicKeyInfo(makeKey("ed25519"))["1"]!.name, "ed25519");
    assert.equal(publicKeyInfo(makeKey("ed25519", { derived: true }))["1"]!.public_key, undefined);
  });
});
