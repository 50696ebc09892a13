import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type CreateKeyOptions,
  createKey,
  decrypt,
  encrypt,
  KEY_TYPES,
  type KeyType,
  sign,
  supports,
  verify,
} from "../../src/keys/index.ts";
import { after, expectError, NOW } from "./fixtures.ts";

describe("create key", () => {
  it("sets defaults for aes", () => {
    const key = createKey("orders", "aes256-gcm96", {}, NOW);
    assert.equal(key.state, "active");
    assert.equal(key.latestVersion, 1);
    assert.equal(key.minDecryptionVersion, 1);
    assert.equal(key.minEncryptionVersion, 0);
    assert.equal(key.minAvailableVersion, 0);
    assert.equal(key.exportable, false);
    assert.equal(key.deletionAllowed, false);
    assert.equal(key.autoRotatePeriod, 0);
    assert.equal(key.keySize, undefined);
    assert.equal(key.createdAt, NOW.toISOString());
    assert.equal(Buffer.from(key.versions["1"]!.secret!, "base64").length, 32);
    assert.equal(Buffer.from(key.versions["1"]!.hmacKey!, "base64").length, 32);
    assert.deepEqual(JSON.parse(JSON.stringify(key)), key, "keys are plain JSON");
  });

  it("generates material per type", () => {
    const expectedSecret: Partial<Record<KeyType, number>> = {
      "aes128-gcm96": 16,
      "aes256-gcm96": 32,
      "chacha20-poly1305": 32,
    };
    for (const type of KEY_TYPES.filter((t) => !t.startsWith("rsa-"))) {
      const version = createKey("k", type, {}, NOW).versions["1"]!;
      const length = expectedSecret[type];
      if (length !== undefined)
        assert.equal(Buffer.from(version.secret!, "base64").length, length, type);
      assert.equal(version.publicKeyPem !== undefined, supports(type, "sign"), type);
      assert.equal(version.secret === undefined, type === "hmac", type);
    }
  });

  it("larger rsa keys work", () => {
    for (const type of ["rsa-3072", "rsa-4096"] as const) {
      const key = createKey("big", type, {}, NOW);
      const input = Buffer.from("data");
      assert.equal(
        verify(key, { input, signature: sign(key, { input }, NOW).signature }, NOW).valid,
        true,
        type,
      );
      const { ciphertext } = encrypt(key, { plaintext: input }, NOW);
      assert.deepEqual(decrypt(key, { ciphertext }, NOW).plaintext, input, type);
    }
  });

  it("pre-active until activation date", () => {
    const key = createKey("later", "ed25519", { activationDate: after(60) }, NOW);
    assert.equal(key.state, "pre-active");
    assert.equal(key.activationDate, after(60).toISOString());
    assert.equal(createKey("now", "ed25519", { activationDate: NOW }, NOW).state, "active");
  });

  it("hmac key size default", () => {
    assert.equal(createKey("mac", "hmac", {}, NOW).keySize, 32);
    assert.equal(createKey("mac", "hmac", { keySize: 0 }, NOW).keySize, 32);
    assert.equal(createKey("mac", "hmac", { keySize: 512 }, NOW).keySize, 512);
  });

  const failCases: [string, string, KeyType, CreateKeyOptions, string][] = [
    ["fail empty name", "", "aes256-gcm96", {}, "name"],
    ["fail name with slash", "a/b", "aes256-gcm96", {}, "name"],
    ["fail name ending in dot", "a.", "aes256-gcm96", {}, "name"],
    ["fail name too long", "a".repeat(129), "aes256-gcm96", {}, "name"],
    ["fail unknown type", "k", "aes512" as KeyType, {}, "type"],
    ["fail derived ecdsa", "k", "ecdsa-p256", { derived: true }, "derived"],
    ["fail derived rsa", "k", "rsa-2048", { derived: true }, "derived"],
    ["fail derived hmac", "k", "hmac", { derived: true }, "derived"],
    [
      "fail convergent without derived",
      "k",
      "aes256-gcm96",
      { convergentEncryption: true },
      "convergent_encryption",
    ],
    [
      "fail convergent ed25519",
      "k",
      "ed25519",
      { derived: true, convergentEncryption: true },
      "convergent_encryption",
    ],
    ["fail key size on aes", "k", "aes256-gcm96", { keySize: 32 }, "key_size"],
    ["fail hmac key too small", "k", "hmac", { keySize: 16 }, "key_size"],
    ["fail hmac key too large", "k", "hmac", { keySize: 513 }, "key_size"],
    [
      "fail rotation under an hour",
      "k",
      "aes256-gcm96",
      { autoRotatePeriod: 60 },
      "auto_rotate_period",
    ],
    [
      "fail invalid activation date",
      "k",
      "aes256-gcm96",
      { activationDate: new Date("nope") },
      "activation_date",
    ],
    [
      "fail exportable not boolean",
      "k",
      "aes256-gcm96",
      { exportable: 1 as unknown as boolean },
      "exportable",
    ],
  ];
  for (const [title, name, type, options, field] of failCases) {
    it(title, () => {
      expectError(() => createKey(name, type, options, NOW), "invalid_field", field);
    });
  }

  it("ok vault style names", () => {
    for (const name of ["a", "my-key", "my_key.v2", "_internal", "A1"]) {
      assert.equal(createKey(name, "hmac", {}, NOW).name, name);
    }
  });
});
