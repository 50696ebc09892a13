import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DECRYPTION_FAILED_MESSAGE, isKeywardError } from "../../src/errors.ts";
import {
  configureKey,
  decrypt,
  encrypt,
  generateDataKey,
  type ManagedKey,
  parseVersionedValue,
  rotateKey,
  transitionState,
  trimKey,
} from "../../src/keys/index.ts";
import { expectError, makeKey, NOW } from "./fixtures.ts";

const AEAD_TYPES = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"] as const;
const ENCRYPTING_TYPES = [...AEAD_TYPES, "rsa-2048"] as const;
const plaintext = Buffer.from("attack at dawn");

function payloadOf(ciphertext: string): Buffer {
  return parseVersionedValue(ciphertext, "ciphertext", "invalid_ciphertext").bytes;
}

function withVersions(key: ManagedKey, count: number): ManagedKey {
  let next = key;
  for (let i = 1; i < count; i++) next = rotateKey(next, NOW);
  return next;
}

describe("encrypt and decrypt", () => {
  for (const type of ENCRYPTING_TYPES) {
    it(`${type} round trip`, () => {
      const key = makeKey(type);
      const before = structuredClone(key);
      const { ciphertext, keyVersion } = encrypt(key, { plaintext }, NOW);
      assert.match(ciphertext, /^keyward:v1:[A-Za-z0-9+/]+=*$/);
      assert.equal(keyVersion, 1);
      assert.deepEqual(decrypt(key, { ciphertext }, NOW), { plaintext, keyVersion: 1 });
      assert.deepEqual(key, before, "operations must not change the key");
    });

    it(`${type} empty plaintext`, () => {
      const key = makeKey(type);
      const { ciphertext } = encrypt(key, { plaintext: Buffer.alloc(0) }, NOW);
      assert.equal(decrypt(key, { ciphertext }, NOW).plaintext.length, 0);
    });
  }

  for (const type of AEAD_TYPES) {
    it(`${type} payload layout`, () => {
      const payload = payloadOf(encrypt(makeKey(type), { plaintext }, NOW).ciphertext);
      assert.equal(payload.length, 12 + plaintext.length + 16);
    });

    it(`${type} binds associated data`, () => {
      const key = makeKey(type);
      const associatedData = Buffer.from("record 17");
      const { ciphertext } = encrypt(key, { plaintext, associatedData }, NOW);
      assert.deepEqual(decrypt(key, { ciphertext, associatedData }, NOW).plaintext, plaintext);
      expectError(() => decrypt(key, { ciphertext }, NOW), "decryption_failed");
      expectError(
        () => decrypt(key, { ciphertext, associatedData: Buffer.from("record 18") }, NOW),
        "decryption_failed",
      );
    });

    it(`${type} random nonces differ`, () => {
      const key = makeKey(type);
      const first = encrypt(key, { plaintext }, NOW).ciphertext;
      const second = encrypt(key, { plaintext }, NOW).ciphertext;
      assert.notEqual(first, second);
    });

    it(`${type} derived needs context`, () => {
      const key = makeKey(type, { derived: true });
      const context = Buffer.from("tenant-a");
      const { ciphertext } = encrypt(key, { plaintext, context }, NOW);
      assert.deepEqual(decrypt(key, { ciphertext, context }, NOW).plaintext, plaintext);
      expectError(
        () => decrypt(key, { ciphertext, context: Buffer.from("tenant-b") }, NOW),
        "decryption_failed",
      );
      expectError(() => encrypt(key, { plaintext }, NOW), "missing_field", "context");
      expectError(
        () => encrypt(key, { plaintext, context: Buffer.alloc(0) }, NOW),
        "missing_field",
        "context",
      );
      expectError(() => decrypt(key, { ciphertext }, NOW), "missing_field", "context");
      expectError(
        () => encrypt(key, { plaintext, context: Buffer.alloc(1025) }, NOW),
        "invalid_field",
        "context",
      );
    });

    it(`${type} convergent is deterministic`, () => {
      const key = makeKey(type, { derived: true, convergentEncryption: true });
      const context = Buffer.from("tenant-a");
      const first = encrypt(key, { plaintext, context }, NOW).ciphertext;
      assert.equal(encrypt(key, { plaintext, context }, NOW).ciphertext, first);
      assert.notEqual(
        encrypt(key, { plaintext, context: Buffer.from("tenant-b") }, NOW).ciphertext,
        first,
      );
      assert.notEqual(
        encrypt(key, { plaintext: Buffer.from("attack at dusk"), context }, NOW).ciphertext,
        first,
      );
      assert.deepEqual(decrypt(key, { ciphertext: first, context }, NOW).plaintext, plaintext);
    });

    it(`${type} convergent nonce covers associated data`, () => {
      const key = makeKey(type, { derived: true, convergentEncryption: true });
      const context = Buffer.from("tenant-a");
      const nonceFor = (associatedData: Buffer) =>
        payloadOf(encrypt(key, { plaintext, context, associatedData }, NOW).ciphertext).subarray(
          0,
          12,
        );
      assert.deepEqual(nonceFor(Buffer.from("a")), nonceFor(Buffer.from("a")));
      assert.notDeepEqual(nonceFor(Buffer.from("a")), nonceFor(Buffer.from("b")));
    });

    it(`${type} tampering fails alike`, () => {
      const key = makeKey(type);
      const associatedData = Buffer.from("aad");
      const { ciphertext } = encrypt(key, { plaintext, associatedData }, NOW);
      const payload = payloadOf(ciphertext);

      // Every single-bit flip, truncations (including below nonce + tag) and an extension.
      const variants: Buffer[] = [];
      for (let i = 0; i < payload.length; i++) {
        const copy = Buffer.from(payload);
        copy[i] = (copy[i] ?? 0) ^ 0x01;
        variants.push(copy);
      }
      variants.push(payload.subarray(0, payload.length - 1));
      variants.push(payload.subarray(0, 27));
      variants.push(payload.subarray(0, 3));
      variants.push(Buffer.concat([payload, Buffer.from([0])]));

      const messages = new Set<string>();
      for (const variant of variants) {
        const tampered = `keyward:v1:${variant.toString("base64")}`;
        const attempt = () => decrypt(key, { ciphertext: tampered, associatedData }, NOW);
        messages.add(expectError(attempt, "decryption_failed").message);
      }

      // Another key's ciphertext fails the same way.
      const otherKey = makeKey(type, {}, "other-key");
      const other = encrypt(otherKey, { plaintext, associatedData }, NOW).ciphertext;
      const attempt = () => decrypt(key, { ciphertext: other, associatedData }, NOW);
      messages.add(expectError(attempt, "decryption_failed").message);

      assert.deepEqual([...messages], [DECRYPTION_FAILED_MESSAGE]);
    });
  }

  it("rsa tampering fails alike", () => {
    const key = makeKey("rsa-2048");
    const payload = payloadOf(encrypt(key, { plaintext }, NOW).ciphertext);
    for (const index of [0, 1, 100, 255]) {
      const copy = Buffer.from(payload);
      copy[index] = (copy[index] ?? 0) ^ 0x80;
      const error = expectError(
        () => decrypt(key, { ciphertext: `keyward:v1:${copy.toString("base64")}` }, NOW),
        "decryption_failed",
      );
      assert.equal(error.message, DECRYPTION_FAILED_MESSAGE);
    }
  });

  it("rsa rejects associated data", () => {
    const key = makeKey("rsa-2048");
    expectError(
      () => encrypt(key, { plaintext, associatedData: Buffer.from("x") }, NOW),
      "invalid_field",
      "associated_data",
    );
  });

  it("rsa limits plaintext length", () => {
    const key = makeKey("rsa-2048");
    // 256-byte modulus - 2 * 32-byte SHA-256 - 2 = 190 bytes.
    assert.ok(encrypt(key, { plaintext: Buffer.alloc(190) }, NOW));
    expectError(
      () => encrypt(key, { plaintext: Buffer.alloc(191) }, NOW),
      "invalid_field",
      "plaintext",
    );
  });

  it("fail context on plain key", () => {
    expectError(
      () => encrypt(makeKey("aes256-gcm96"), { plaintext, context: Buffer.from("x") }, NOW),
      "invalid_field",
      "context",
    );
  });

  it("fail caller supplied nonce", () => {
    expectError(
      () => encrypt(makeKey("aes256-gcm96"), { plaintext, nonce: Buffer.alloc(12) }, NOW),
      "invalid_field",
      "nonce",
    );
    const convergent = makeKey("aes256-gcm96", { derived: true, convergentEncryption: true });
    expectError(
      () =>
        encrypt(convergent, { plaintext, context: Buffer.from("c"), nonce: Buffer.alloc(12) }, NOW),
      "invalid_field",
      "nonce",
    );
  });

  for (const type of ["ed25519", "ecdsa-p256", "hmac"] as const) {
    it(`fail encrypt with ${type}`, () => {
      const error = expectError(
        () => encrypt(makeKey(type), { plaintext }, NOW),
        "unsupported_operation",
      );
      assert.match(error.message, new RegExp(`${type} keys do not support encrypt`));
      expectError(
        () => decrypt(makeKey(type), { ciphertext: "keyward:v1:AAAA" }, NOW),
        "unsupported_operation",
      );
    });
  }

  it("selects and restricts versions", () => {
    const key = withVersions(makeKey("aes256-gcm96"), 3);
    assert.equal(encrypt(key, { plaintext }, NOW).keyVersion, 3);
    assert.equal(encrypt(key, { plaintext, keyVersion: 0 }, NOW).keyVersion, 3);
    const old = encrypt(key, { plaintext, keyVersion: 1 }, NOW);
    assert.equal(old.keyVersion, 1);
    assert.equal(decrypt(key, { ciphertext: old.ciphertext }, NOW).keyVersion, 1);
    expectError(
      () => encrypt(key, { plaintext, keyVersion: 4 }, NOW),
      "invalid_field",
      "key_version",
    );
    expectError(
      () => encrypt(key, { plaintext, keyVersion: 1.5 }, NOW),
      "invalid_field",
      "key_version",
    );
    expectError(
      () => encrypt(key, { plaintext, keyVersion: -1 }, NOW),
      "invalid_field",
      "key_version",
    );

    const restricted = configureKey(key, { minEncryptionVersion: 2, minDecryptionVersion: 2 }, NOW);
    expectError(
      () => encrypt(restricted, { plaintext, keyVersion: 1 }, NOW),
      "version_too_old",
      "key_version",
    );
    assert.equal(encrypt(restricted, { plaintext, keyVersion: 2 }, NOW).keyVersion, 2);
    expectError(
      () => decrypt(restricted, { ciphertext: old.ciphertext }, NOW),
      "version_too_old",
      "ciphertext",
    );

    const trimmed = trimKey(restricted, 2, NOW);
    expectError(
      () => decrypt(trimmed, { ciphertext: old.ciphertext }, NOW),
      "version_too_old",
      "ciphertext",
    );
    const future = old.ciphertext.replace("keyward:v1:", "keyward:v9:");
    expectError(
      () => decrypt(trimmed, { ciphertext: future }, NOW),
      "invalid_ciphertext",
      "ciphertext",
    );
  });

  it("fail malformed ciphertext", () => {
    const key = makeKey("aes256-gcm96");
    for (const ciphertext of ["", "vault:v1:AAAA", "keyward:v1:!!!!", "keyward:vx:AAAA"]) {
      expectError(() => decrypt(key, { ciphertext }, NOW), "invalid_ciphertext", "ciphertext");
    }
  });

  it("decrypts when deactivated or compromised", () => {
    const key = makeKey("aes256-gcm96");
    const { ciphertext } = encrypt(key, { plaintext }, NOW);
    for (const state of ["deactivated", "compromised"] as const) {
      const moved = transitionState(key, state, NOW);
      assert.deepEqual(decrypt(moved, { ciphertext }, NOW).plaintext, plaintext);
      expectError(() => encrypt(moved, { plaintext }, NOW), "invalid_state");
    }
    expectError(
      () => decrypt(transitionState(key, "suspended", NOW), { ciphertext }, NOW),
      "invalid_state",
    );
  });

  it("batch items stay independent", () => {
    const key = makeKey("aes256-gcm96", { derived: true });
    const items = ["a", "b", "c", "d"].map((name) => ({
      context: Buffer.from(name),
      plaintext: Buffer.from(`data ${name}`),
    }));
    const results = items.map((item) => {
      try {
        return encrypt(
          key,
          item.context.toString() === "c" ? { plaintext: item.plaintext } : item,
          NOW,
        );
      } catch (error) {
        return error;
      }
    });
    const failed = results[2];
    assert.ok(isKeywardError(failed), "the item without context fails");
    assert.equal(failed.code, "missing_field");
    for (const index of [0, 1, 3]) {
      const result = results[index] as { ciphertext: string };
      const item = items[index]!;
      assert.deepEqual(
        decrypt(key, { ciphertext: result.ciphertext, context: item.context }, NOW).plaintext,
        item.plaintext,
      );
    }
  });
});

describe("generate data key", () => {
  for (const bits of [128, 256, 512] as const) {
    it(`wraps ${bits}-bit data keys`, () => {
      const key = makeKey("aes256-gcm96");
      const dataKey = generateDataKey(key, { bits }, NOW);
      assert.equal(dataKey.plaintext.length, bits / 8);
      assert.deepEqual(
        decrypt(key, { ciphertext: dataKey.ciphertext }, NOW).plaintext,
        dataKey.plaintext,
      );
    });
  }

  it("fail unsupported bit length", () => {
    expectError(
      () => generateDataKey(makeKey("aes256-gcm96"), { bits: 192 as 256 }, NOW),
      "invalid_field",
      "bits",
    );
  });

  it("derived data keys need context", () => {
    const key = makeKey("chacha20-poly1305", { derived: true });
    expectError(() => generateDataKey(key, { bits: 256 }, NOW), "missing_field", "context");
    const context = Buffer.from("ctx");
    const dataKey = generateDataKey(key, { bits: 256, context }, NOW);
    assert.deepEqual(
      decrypt(key, { ciphertext: dataKey.ciphertext, context }, NOW).plaintext,
      dataKey.plaintext,
    );
  });
});
