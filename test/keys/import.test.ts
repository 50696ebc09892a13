import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, type JsonWebKey } from "node:crypto";
import { describe, it } from "node:test";
import {
  backupKey,
  encrypt,
  importedVersionMaterial,
  importKey,
  importKeyVersion,
  restoreKey,
  rotateKey,
  rotationDue,
  validateManagedKey,
} from "../../src/keys/index.ts";
import { after, expectError, NOW } from "./fixtures.ts";

function pkcs8(privateKey: import("node:crypto").KeyObject): Buffer {
  return privateKey.export({ format: "der", type: "pkcs8" });
}

describe("key import", () => {
  it("builds AEAD material from raw bytes", () => {
    const bytes = Buffer.alloc(32, 7);
    const material = importedVersionMaterial("aes256-gcm96", bytes, "ciphertext");
    assert.equal(material.secret, bytes.toString("base64"));
    assert.equal(Buffer.from(material.hmacKey ?? "", "base64").length, 32);
    expectError(
      () => importedVersionMaterial("aes128-gcm96", bytes, "ciphertext"),
      "invalid_key_material",
      "ciphertext",
    );
  });

  it("checks hmac key sizes", () => {
    const material = importedVersionMaterial("hmac", Buffer.alloc(64, 1), "ciphertext");
    assert.equal(Buffer.from(material.hmacKey ?? "", "base64").length, 64);
    assert.equal(material.secret, undefined);
    expectError(
      () => importedVersionMaterial("hmac", Buffer.alloc(31), "ciphertext"),
      "invalid_key_material",
    );
    expectError(
      () => importedVersionMaterial("hmac", Buffer.alloc(513), "ciphertext"),
      "invalid_key_material",
    );
    expectError(
      () => importedVersionMaterial("hmac", Buffer.alloc(40), "ciphertext", 64),
      "invalid_key_material",
    );
  });

  it("re-encodes asymmetric keys", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const material = importedVersionMaterial("ecdsa-p384", pkcs8(privateKey), "ciphertext");
    assert.equal(
      material.publicKeyPem,
      publicKey.export({ format: "pem", type: "spki" }).toString(),
    );
    expectError(
      () => importedVersionMaterial("ecdsa-p256", pkcs8(privateKey), "ciphertext"),
      "invalid_key_material",
    );
  });

  it("rejects a key of another algorithm", () => {
    const { privateKey } = generateKeyPairSync("x25519");
    const error = expectError(
      () => importedVersionMaterial("ed25519", pkcs8(privateKey), "ciphertext"),
      "invalid_key_material",
    );
    assert.match(error.message, /unsupported algorithm/);
  });

  it("rejects an inconsistent RSA key", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = privateKey.export({ format: "jwk" }) as JsonWebKey;
    const flip = (value: string | undefined) => {
      const bytes = Buffer.from(value ?? "", "base64url");
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 2;
      return bytes.toString("base64url");
    };
    const broken = { ...jwk, d: flip(jwk.d), dp: flip(jwk.dp), dq: flip(jwk.dq) };
    const der = pkcs8(createPrivateKey({ key: broken, format: "jwk" }));
    const error = expectError(
      () => importedVersionMaterial("rsa-2048", der, "ciphertext"),
      "invalid_key_material",
    );
    assert.match(error.message, /inconsistent/);
  });

  it("marks imported keys and blocks rotation", () => {
    const material = importedVersionMaterial("aes256-gcm96", Buffer.alloc(32, 3), "ciphertext");
    const key = importKey("byok", "aes256-gcm96", {}, NOW, material);
    assert.equal(key.imported, true);
    assert.equal(key.allowRotation, false);
    const error = expectError(() => rotateKey(key, after(60)), "invalid_state");
    assert.match(error.message, /allow_rotation/);

    const next = importKeyVersion(key, after(60), material);
    assert.equal(next.latestVersion, 2);
    assert.equal(next.versions["2"]?.secret, material.secret);
    assert.ok(encrypt(next, { plaintext: Buffer.from("x") }, after(60)));
  });

  it("skips automatic rotation without allow_rotation", () => {
    const material = importedVersionMaterial("aes256-gcm96", Buffer.alloc(32, 3), "ciphertext");
    expectError(
      () => importKey("byok", "aes256-gcm96", { autoRotatePeriod: 3600 }, NOW, material),
      "invalid_field",
      "auto_rotate_period",
    );
    const rotating = importKey(
      "byok",
      "aes256-gcm96",
      { autoRotatePeriod: 3600, allowRotation: true },
      NOW,
      material,
    );
    assert.equal(rotationDue(rotating, after(7200)), true);
    assert.equal(rotateKey(rotating, after(7200)).latestVersion, 2);
    // A key stored with rotation settings that disagree is still never rotated automatically.
    assert.equal(rotationDue({ ...rotating, allowRotation: false }, after(7200)), false);
  });

  it("keeps the import flags through backup", () => {
    const material = importedVersionMaterial("aes256-gcm96", Buffer.alloc(32, 3), "ciphertext");
    const key = importKey(
      "byok",
      "aes256-gcm96",
      { exportable: true, allowPlaintextBackup: true },
      NOW,
      material,
    );
    const restored = restoreKey(backupKey(key, NOW));
    assert.equal(restored.imported, true);
    assert.equal(restored.allowRotation, false);
    const { imported: _imported, ...generated } = key;
    expectError(() => validateManagedKey(generated), "invalid_field", "backup");
  });
});
