import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backupKey,
  configureKey,
  createKey,
  droppedHsmObjects,
  exportKey,
  hmac,
  hsmObjectsOf,
  prepareEncryption,
  prepareSignature,
  restoreKey,
  rotateKey,
  trimKey,
} from "../../src/keys/index.ts";
import type { HsmObjectRef } from "../../src/keys/types.ts";
import { expectError, NOW } from "./fixtures.ts";

function reference(version: number): HsmObjectRef {
  return { label: `keyward/transit/k/v${version}`, id: `0${version}`.repeat(16).slice(0, 32) };
}

function hsmKey(type: "aes256-gcm96" | "ecdsa-p256" = "aes256-gcm96") {
  return createKey("k", type, { hsm: true }, NOW, { hsmObject: reference(1) });
}

describe("HSM-held keys", () => {
  it("versions carry a reference and no material", () => {
    const key = hsmKey();
    assert.equal(key.hsm, true);
    const version = key.versions["1"];
    assert.deepEqual(version?.hsmObject, reference(1));
    assert.equal(version?.secret, undefined);
    assert.equal(version?.hmacKey, undefined);
    assert.equal(createKey("soft", "aes256-gcm96", {}, NOW).hsm, undefined);
  });

  it("creation needs the HSM object", () => {
    expectError(() => createKey("k", "aes256-gcm96", { hsm: true }, NOW), "internal");
    const rotated = rotateKey(hsmKey(), NOW, { hsmObject: reference(2) });
    assert.deepEqual(rotated.versions["2"]?.hsmObject, reference(2));
    expectError(() => rotateKey(hsmKey(), NOW), "internal");
  });

  it("rejects settings that need the material", () => {
    const cases: Array<[string, object, string]> = [
      ["ed25519", { type: "ed25519" }, "hsm"],
      ["ecdsa-p384", { type: "ecdsa-p384" }, "hsm"],
      ["hmac", { type: "hmac" }, "hsm"],
      ["exportable", { exportable: true }, "exportable"],
      ["backup", { allowPlaintextBackup: true }, "allow_plaintext_backup"],
      ["derived", { derived: true }, "derived"],
      ["convergent", { convergentEncryption: true }, "convergent_encryption"],
    ];
    for (const [name, options, field] of cases) {
      const { type = "aes256-gcm96", ...rest } = options as { type?: "aes256-gcm96" };
      const error = expectError(
        () => createKey("k", type, { hsm: true, ...rest }, NOW, { hsmObject: reference(1) }),
        "invalid_field",
        field,
      );
      assert.ok(error.message.length > 0, name);
    }
  });

  it("configuration cannot make it exportable", () => {
    expectError(
      () => configureKey(hsmKey(), { exportable: true }, NOW),
      "invalid_field",
      "exportable",
    );
    expectError(
      () => configureKey(hsmKey(), { allowPlaintextBackup: true }, NOW),
      "invalid_field",
      "allow_plaintext_backup",
    );
    const allowed = configureKey(hsmKey(), { deletionAllowed: true, exportable: false }, NOW);
    assert.equal(allowed.deletionAllowed, true);
  });

  it("export, backup and HMAC are unsupported", () => {
    const key = hsmKey("ecdsa-p256");
    const withPublicKey = {
      ...key,
      versions: { "1": { ...key.versions["1"]!, publicKeyPem: "PEM" } },
    };
    expectError(
      () => exportKey(withPublicKey, "signing-key", undefined, NOW),
      "unsupported_operation",
    );
    expectError(
      () => exportKey(withPublicKey, "hmac-key", undefined, NOW),
      "unsupported_operation",
    );
    assert.deepEqual(exportKey(withPublicKey, "public-key", undefined, NOW), { "1": "PEM" });
    expectError(() => backupKey(key, NOW), "unsupported_operation");
    expectError(() => hmac(key, { input: Buffer.from("x") }, NOW), "unsupported_operation");
  });

  it("restore rejects a document with hsm", () => {
    const document = { format: "keyward-key-backup", formatVersion: 1, key: hsmKey() };
    const backup = Buffer.from(JSON.stringify(document)).toString("base64");
    const error = expectError(() => restoreKey(backup), "invalid_field", "backup");
    assert.match(error.message, /key\.hsm/);
  });

  it("prepared requests check as the software path does", () => {
    const key = hsmKey();
    const prepared = prepareEncryption(key, { plaintext: Buffer.from("p") }, NOW);
    assert.equal(prepared.version.version, 1);
    expectError(
      () => prepareEncryption(key, { plaintext: Buffer.from("p"), context: Buffer.from("c") }, NOW),
      "invalid_field",
      "context",
    );
    expectError(
      () => prepareEncryption(key, { plaintext: Buffer.from("p"), keyVersion: 2 }, NOW),
      "invalid_field",
      "key_version",
    );
    expectError(
      () => prepareSignature(key, { input: Buffer.from("m") }, NOW),
      "unsupported_operation",
    );
  });

  it("dropped references after trim and deletion", () => {
    let key = hsmKey();
    key = rotateKey(key, NOW, { hsmObject: reference(2) });
    key = rotateKey(key, NOW, { hsmObject: reference(3) });
    assert.deepEqual(hsmObjectsOf(key), [reference(1), reference(2), reference(3)]);
    const raised = configureKey(key, { minDecryptionVersion: 3 }, NOW);
    const trimmed = trimKey(raised, 3, NOW);
    assert.deepEqual(droppedHsmObjects(raised, trimmed), [reference(1), reference(2)]);
    assert.deepEqual(droppedHsmObjects(key, undefined), hsmObjectsOf(key));
    assert.deepEqual(droppedHsmObjects(key, key), []);
  });
});
