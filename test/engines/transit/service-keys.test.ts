import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeywardError } from "../../../src/errors.ts";
import { base64, createFixture, DAY_MS, HOUR_MS } from "./fixtures.ts";

/** Returns the names a sweep changed, sorted, so tests need not depend on the index's time order. */
function changedNames(summary: { names: string[] }): string[] {
  return [...summary.names].sort();
}

async function rejectsWith(promise: Promise<unknown>, code: string, field?: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

describe("TransitService key management", () => {
  it("creates and reads a key", async () => {
    const { service, clock } = createFixture();
    const created = await service.createKey("payments");
    assert.deepEqual(created.warnings, []);
    assert.equal(created.value.type, "aes256-gcm96");

    const key = await service.readKey("payments");
    assert.equal(key.name, "payments");
    assert.equal(key.latestVersion, 1);
    assert.equal(key.minDecryptionVersion, 1);
    assert.equal(key.minEncryptionVersion, 0);
    assert.equal(key.supportsEncryption, true);
    assert.equal(key.supportsDecryption, true);
    assert.equal(key.supportsDerivation, true);
    assert.equal(key.supportsSigning, false);
    assert.equal(key.state, "active");
    assert.equal(key.deletionDate, null);
    assert.equal(key.compromisedAt, null);
    assert.deepEqual(key.keys, { "1": Math.floor(clock.now().getTime() / 1000) });
  });

  it("reports public keys for asymmetric keys", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ed25519" });
    const key = await service.readKey("signer");
    const version = key.keys["1"] as { public_key?: string; creation_time?: string };
    assert.equal(typeof version.public_key, "string");
    assert.equal(typeof version.creation_time, "string");
    assert.equal(key.supportsSigning, true);
    assert.equal(key.supportsEncryption, false);
  });

  it("create on existing key is a no-op", async () => {
    const { service } = createFixture();
    await service.createKey("k", { type: "aes128-gcm96" });
    const again = await service.createKey("k", { type: "ed25519" });
    assert.equal(again.value.type, "aes128-gcm96");
    assert.equal(again.warnings.length, 1);
    assert.match(again.warnings[0] ?? "", /already exists/);
  });

  it("accepts duration strings for auto_rotate_period", async () => {
    const { service } = createFixture();
    const created = await service.createKey("rotating", { autoRotatePeriod: "24h" });
    assert.equal(created.value.autoRotatePeriod, 86400);
    const configured = await service.configureKey("rotating", { autoRotatePeriod: 7200 });
    assert.equal(configured.value.autoRotatePeriod, 7200);
    const disabled = await service.configureKey("rotating", { autoRotatePeriod: "0" });
    assert.equal(disabled.value.autoRotatePeriod, 0);
  });

  it("creates a pre-active key with an activation date", async () => {
    const { service, clock } = createFixture();
    const created = await service.createKey("later", { activationDate: "2030-01-02T00:00:00Z" });
    assert.equal(created.value.state, "pre-active");
    await rejectsWith(service.encrypt("later", { plaintext: base64("x") }), "invalid_state");
    clock.advance(DAY_MS);
    assert.equal((await service.readKey("later")).state, "active");
    const encrypted = await service.encrypt("later", { plaintext: base64("x") });
    assert.equal(encrypted.value.keyVersion, 1);
  });

  const invalidCreates: Array<[string, string, Record<string, unknown>, string]> = [
    ["fail leading dot name", ".hidden", {}, "name"],
    ["fail slash in name", "a/b", {}, "name"],
    ["fail empty name", "", {}, "name"],
    ["fail name too long", "a".repeat(129), {}, "name"],
    ["fail name with space", "a b", {}, "name"],
    ["fail rotate period under an hour", "k", { autoRotatePeriod: 60 }, "auto_rotate_period"],
    ["fail rotate period garbage", "k", { autoRotatePeriod: "soon" }, "auto_rotate_period"],
    ["fail rotate period sub-second", "k", { autoRotatePeriod: "500ms" }, "auto_rotate_period"],
    ["fail rotate period too long", "k", { autoRotatePeriod: 1e12 }, "auto_rotate_period"],
    ["fail activation date garbage", "k", { activationDate: "tomorrow" }, "activation_date"],
    [
      "fail convergent without derived",
      "k",
      { convergentEncryption: true },
      "convergent_encryption",
    ],
    ["fail derived rsa", "k", { type: "rsa-2048", derived: true }, "derived"],
    ["fail key size on aes", "k", { keySize: 64 }, "key_size"],
  ];
  for (const [title, name, request, field] of invalidCreates) {
    it(title, async () => {
      const { service } = createFixture();
      await rejectsWith(service.createKey(name, request), "invalid_field", field);
    });
  }

  it("lists keys in order", async () => {
    const { service } = createFixture();
    assert.deepEqual(await service.listKeys(), []);
    await service.createKey("b");
    await service.createKey("a");
    await service.createKey("c.d-e_f");
    assert.deepEqual(await service.listKeys(), ["a", "b", "c.d-e_f"]);
  });

  it("read of missing key fails", async () => {
    const { service } = createFixture();
    await rejectsWith(service.readKey("missing"), "not_found");
  });

  it("configures key versions", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await service.rotateKey("k");
    await service.rotateKey("k");
    const configured = await service.configureKey("k", {
      minDecryptionVersion: 2,
      minEncryptionVersion: 3,
      deletionAllowed: true,
      exportable: true,
    });
    assert.equal(configured.value.minDecryptionVersion, 2);
    assert.equal(configured.value.minEncryptionVersion, 3);
    assert.equal(configured.value.deletionAllowed, true);
    assert.equal(configured.value.exportable, true);
    await rejectsWith(
      service.configureKey("k", { minDecryptionVersion: 9 }),
      "invalid_field",
      "min_decryption_version",
    );
    await rejectsWith(
      service.configureKey("k", { exportable: false }),
      "invalid_field",
      "exportable",
    );
  });

  it("rotate adds a version", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const rotated = await service.rotateKey("k");
    assert.equal(rotated.value.latestVersion, 2);
    assert.deepEqual(Object.keys(rotated.value.keys), ["1", "2"]);
    const encrypted = await service.encrypt("k", { plaintext: base64("hello") });
    assert.equal(encrypted.value.keyVersion, 2);
  });

  it("trims old versions", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await service.rotateKey("k");
    await service.rotateKey("k");
    await rejectsWith(service.trimKey("k", 3), "invalid_field", "min_available_version");
    await service.configureKey("k", { minDecryptionVersion: 3, minEncryptionVersion: 3 });
    await service.trimKey("k", 3);
    const key = await service.readKey("k");
    assert.deepEqual(Object.keys(key.keys), ["3"]);
    assert.equal(key.minAvailableVersion, 3);
  });

  it("moves keys through lifecycle states", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value: ciphertext } = await service.encrypt("k", { plaintext: base64("data") });

    const suspended = await service.setKeyState("k", "suspended");
    assert.equal(suspended.value.state, "suspended");
    await rejectsWith(service.encrypt("k", { plaintext: base64("x") }), "invalid_state");
    await rejectsWith(service.decrypt("k", { ciphertext: ciphertext.ciphertext }), "invalid_state");

    await service.setKeyState("k", "active");
    await service.setKeyState("k", "deactivated");
    await rejectsWith(service.encrypt("k", { plaintext: base64("x") }), "invalid_state");
    const decrypted = await service.decrypt("k", { ciphertext: ciphertext.ciphertext });
    assert.equal(decrypted.value.plaintext, base64("data"));

    await rejectsWith(service.setKeyState("k", "active"), "invalid_state");
    await rejectsWith(service.setKeyState("k", "pre-active"), "invalid_field", "state");
    await rejectsWith(service.setKeyState("k", "gone"), "invalid_field", "state");

    const destroyed = await service.setKeyState("k", "destroyed");
    assert.equal(destroyed.value.state, "destroyed");
    await rejectsWith(service.decrypt("k", { ciphertext: ciphertext.ciphertext }), "invalid_state");
    await rejectsWith(service.setKeyState("k", "active"), "invalid_state");
  });

  it("flags use of a compromised key", async () => {
    const { service, logger } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("secret text") });
    const compromised = await service.setKeyState("k", "compromised");
    assert.notEqual(compromised.value.compromisedAt, null);

    const decrypted = await service.decrypt("k", { ciphertext: value.ciphertext });
    assert.equal(decrypted.value.plaintext, base64("secret text"));
    assert.equal(decrypted.warnings.length, 1);
    assert.match(decrypted.warnings[0] ?? "", /compromised/);
    const warning = logger.entries.find((entry) => entry.message === "compromised key used");
    assert.ok(warning);
    assert.equal(warning.level, "warn");
    assert.equal(warning.fields.key, "k");
    assert.equal(warning.fields.operation, "decrypt");
    assert.doesNotMatch(JSON.stringify(logger.entries), /secret text|c2VjcmV0IHRleHQ/);

    await rejectsWith(service.encrypt("k", { plaintext: base64("x") }), "invalid_state");
  });

  it("exports an exportable key", async () => {
    const { service } = createFixture();
    await service.createKey("k", { exportable: true });
    await service.rotateKey("k");
    const all = await service.exportKey("k", "encryption-key");
    assert.equal(all.value.name, "k");
    assert.deepEqual(Object.keys(all.value.keys), ["1", "2"]);
    const latest = await service.exportKey("k", "encryption-key", "latest");
    assert.deepEqual(Object.keys(latest.value.keys), ["2"]);
    const first = await service.exportKey("k", "hmac-key", "1");
    assert.deepEqual(Object.keys(first.value.keys), ["1"]);
  });

  it("export checks kind and permission", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await rejectsWith(service.exportKey("k", "private-key"), "invalid_field", "type");
    await rejectsWith(service.exportKey("k", "encryption-key", "0"), "invalid_field", "version");
    await rejectsWith(service.exportKey("k", "encryption-key", "abc"), "invalid_field", "version");
    await assert.rejects(service.exportKey("k", "encryption-key"), KeywardError);
    await rejectsWith(service.exportKey("missing", "encryption-key"), "not_found");
  });

  it("exports public keys without permission", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ecdsa-p256" });
    const exported = await service.exportKey("signer", "public-key");
    assert.match(exported.value.keys["1"] ?? "", /PUBLIC KEY/);
  });

  it("backs up and restores a key", async () => {
    const { service } = createFixture();
    await service.createKey("k", { exportable: true, allowPlaintextBackup: true });
    const { value } = await service.encrypt("k", { plaintext: base64("kept") });
    const backup = await service.backupKey("k");

    await rejectsWith(service.restoreKey({ backup }), "already_exists");
    await service.restoreKey({ backup, name: "copy" });
    const decrypted = await service.decrypt("copy", { ciphertext: value.ciphertext });
    assert.equal(decrypted.value.plaintext, base64("kept"));
    await service.restoreKey({ backup, force: true });
    await rejectsWith(service.restoreKey({ backup, name: ".bad" }), "invalid_field", "name");
    await assert.rejects(service.restoreKey({ backup: "bm90IGEgYmFja3Vw" }), KeywardError);
  });

  it("backup needs plaintext backup allowed", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await assert.rejects(service.backupKey("k"), KeywardError);
  });

  it("stores mount configuration", async () => {
    const { service } = createFixture({ deletionWindowDays: 14 });
    assert.deepEqual(await service.readMountConfig(), {
      disableUpsert: false,
      deletionWindowDays: 14,
    });
    await service.writeMountConfig({ disableUpsert: true });
    assert.deepEqual(await service.readMountConfig(), {
      disableUpsert: true,
      deletionWindowDays: 14,
    });
    await rejectsWith(
      service.writeMountConfig({ deletionWindowDays: 3 }),
      "invalid_field",
      "deletion_window",
    );
  });

  it("rejects an invalid mount default", () => {
    assert.throws(() => createFixture({ deletionWindowDays: 45 }), KeywardError);
  });
});

describe("TransitService failed writes", () => {
  it("failed rotate leaves key unchanged", async () => {
    const { service, barrier } = createFixture();
    await service.createKey("k");
    const before = await service.readKey("k");

    barrier.failWrites = true;
    await rejectsWith(service.rotateKey("k"), "storage_failure");
    barrier.failWrites = false;

    assert.deepEqual(await service.readKey("k"), before);
    const rotated = await service.rotateKey("k");
    assert.equal(rotated.value.latestVersion, 2);
  });

  it("failed config leaves key unchanged", async () => {
    const { service, barrier } = createFixture();
    await service.createKey("k");
    const before = await service.readKey("k");
    barrier.failWrites = true;
    await rejectsWith(
      service.configureKey("k", { deletionAllowed: true, exportable: true }),
      "storage_failure",
    );
    await rejectsWith(service.setKeyState("k", "suspended"), "storage_failure");
    barrier.failWrites = false;
    assert.deepEqual(await service.readKey("k"), before);
  });

  it("failed create stores nothing", async () => {
    const { service, barrier } = createFixture();
    barrier.failWrites = true;
    await rejectsWith(service.createKey("k"), "storage_failure");
    await rejectsWith(service.encrypt("auto", { plaintext: base64("x") }), "storage_failure");
    barrier.failWrites = false;
    assert.deepEqual(await service.listKeys(), []);
  });

  it("failed deletion schedule leaves key usable", async () => {
    const { service, barrier } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    barrier.failWrites = true;
    await rejectsWith(service.scheduleDeletion("k"), "storage_failure");
    barrier.failWrites = false;
    assert.equal((await service.readKey("k")).deletionDate, null);
    await service.encrypt("k", { plaintext: base64("x") });
  });

  it("sealed barrier rejects every operation", async () => {
    const { service, barrier } = createFixture();
    await service.createKey("k");
    barrier.sealed = true;
    await rejectsWith(service.readKey("k"), "sealed");
    await rejectsWith(service.encrypt("k", { plaintext: base64("x") }), "sealed");
    await rejectsWith(service.listKeys(), "sealed");
  });

  it("serialises concurrent rotations", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await Promise.all(Array.from({ length: 10 }, () => service.rotateKey("k")));
    assert.equal((await service.readKey("k")).latestVersion, 11);
  });
});

describe("TransitService scheduled deletion", () => {
  it("schedules deletion after the window", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k");
    await rejectsWith(service.scheduleDeletion("k"), "deletion_not_allowed");
    await service.configureKey("k", { deletionAllowed: true });

    const scheduled = await service.scheduleDeletion("k");
    const expected = new Date(clock.now().getTime() + 30 * DAY_MS).toISOString();
    assert.equal(scheduled.value.deletionDate, expected);
    assert.equal((await service.readKey("k")).deletionDate, expected);
  });

  it("uses request and mount windows", async () => {
    const { service, clock } = createFixture();
    for (const name of ["a", "b"]) {
      await service.createKey(name);
      await service.configureKey(name, { deletionAllowed: true });
    }
    const a = await service.scheduleDeletion("a", { deletionWindowDays: 7 });
    assert.equal(a.value.deletionDate, new Date(clock.now().getTime() + 7 * DAY_MS).toISOString());
    await service.writeMountConfig({ deletionWindowDays: 10 });
    const b = await service.scheduleDeletion("b");
    assert.equal(b.value.deletionDate, new Date(clock.now().getTime() + 10 * DAY_MS).toISOString());
  });

  const badWindows: Array<[string, number]> = [
    ["fail window below 7", 6],
    ["fail window above 30", 31],
    ["fail fractional window", 7.5],
  ];
  for (const [title, days] of badWindows) {
    it(title, async () => {
      const { service } = createFixture();
      await service.createKey("k");
      await service.configureKey("k", { deletionAllowed: true });
      await rejectsWith(
        service.scheduleDeletion("k", { deletionWindowDays: days }),
        "invalid_field",
        "deletion_window",
      );
    });
  }

  it("pending deletion blocks key use", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("x") });
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k");
    await rejectsWith(service.encrypt("k", { plaintext: base64("x") }), "invalid_state");
    await rejectsWith(service.decrypt("k", { ciphertext: value.ciphertext }), "invalid_state");
    await rejectsWith(service.rotateKey("k"), "invalid_state");
    assert.equal((await service.readKey("k")).name, "k");
  });

  it("repeated schedule keeps first date", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    const first = await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    clock.advance(DAY_MS);
    const second = await service.scheduleDeletion("k", { deletionWindowDays: 30 });
    assert.equal(second.value.deletionDate, first.value.deletionDate);
    assert.equal(second.warnings.length, 1);
  });

  it("cancels a scheduled deletion", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    const cancelled = await service.cancelDeletion("k");
    assert.equal(cancelled.value.deletionDate, null);
    assert.deepEqual(cancelled.warnings, []);
    await service.encrypt("k", { plaintext: base64("x") });

    clock.advance(8 * DAY_MS);
    assert.deepEqual(changedNames(await service.deleteDueKeys(clock.now())), []);
    assert.equal((await service.readKey("k")).name, "k");

    const again = await service.cancelDeletion("k");
    assert.equal(again.warnings.length, 1);
  });

  it("disallowing deletion cancels the schedule", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k");
    const configured = await service.configureKey("k", { deletionAllowed: false });
    assert.equal(configured.value.deletionDate, null);
    assert.equal(configured.warnings.length, 1);
  });

  it("deletes keys when due", async () => {
    const { service, clock, logger } = createFixture();
    for (const name of ["due", "later", "kept"]) {
      await service.createKey(name);
      await service.configureKey(name, { deletionAllowed: true });
    }
    await service.scheduleDeletion("due", { deletionWindowDays: 7 });
    await service.scheduleDeletion("later", { deletionWindowDays: 10 });

    assert.deepEqual(
      changedNames(await service.deleteDueKeys(new Date(clock.now().getTime() + 7 * DAY_MS - 1))),
      [],
    );
    assert.deepEqual(
      changedNames(await service.deleteDueKeys(new Date(clock.now().getTime() + 7 * DAY_MS))),
      ["due"],
    );
    assert.deepEqual(await service.listKeys(), ["kept", "later"]);
    assert.ok(logger.messages("info").includes("key deleted as scheduled"));
    await rejectsWith(service.readKey("due"), "not_found");

    assert.deepEqual(
      changedNames(await service.deleteDueKeys(new Date(clock.now().getTime() + 40 * DAY_MS))),
      ["later"],
    );
    assert.deepEqual(await service.listKeys(), ["kept"]);
  });

  it("failed deletion is logged and retried", async () => {
    const { service, clock, barrier, logger } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    const due = new Date(clock.now().getTime() + 8 * DAY_MS);
    // The first sweep marks the mount's index complete, which is a write.
    await service.prepareIndexes();

    barrier.failWrites = true;
    assert.deepEqual(changedNames(await service.deleteDueKeys(due)), []);
    assert.ok(logger.messages("error").includes("scheduled deletion failed for key"));
    barrier.failWrites = false;
    assert.deepEqual(changedNames(await service.deleteDueKeys(due)), ["k"]);
  });
});

describe("TransitService auto-rotation", () => {
  it("rotates keys when due", async () => {
    const { service, clock } = createFixture();
    await service.createKey("hourly", { autoRotatePeriod: "1h" });
    await service.createKey("daily", { autoRotatePeriod: 86400 });
    await service.createKey("manual");

    clock.advance(HOUR_MS - 1);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), []);
    clock.advance(1);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), ["hourly"]);
    assert.equal((await service.readKey("hourly")).latestVersion, 2);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), []);

    clock.advance(DAY_MS);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), ["daily", "hourly"]);
    assert.equal((await service.readKey("manual")).latestVersion, 1);
  });

  it("missed rotation runs once", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    // The server was down for ten periods: one rotation catches up, not ten.
    clock.advance(10 * HOUR_MS + 5);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), ["k"]);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), []);
    const key = await service.readKey("k");
    assert.equal(key.latestVersion, 2);
    clock.advance(HOUR_MS);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), ["k"]);
  });

  it("skips inactive and pending keys", async () => {
    const { service, clock } = createFixture();
    await service.createKey("suspended", { autoRotatePeriod: "1h" });
    await service.setKeyState("suspended", "suspended");
    await service.createKey("pending", { autoRotatePeriod: "1h" });
    await service.configureKey("pending", { deletionAllowed: true });
    await service.scheduleDeletion("pending");
    await service.createKey("future", {
      autoRotatePeriod: "1h",
      activationDate: "2031-01-01T00:00:00Z",
    });
    clock.advance(2 * HOUR_MS);
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), []);
  });

  it("failed rotation is logged and retried", async () => {
    const { service, clock, barrier, logger } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    await service.prepareIndexes();
    clock.advance(HOUR_MS);
    barrier.failWrites = true;
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), []);
    assert.ok(logger.messages("error").includes("auto-rotation failed for key"));
    assert.equal((await service.readKey("k")).latestVersion, 1);
    barrier.failWrites = false;
    assert.deepEqual(changedNames(await service.rotateDueKeys(clock.now())), ["k"]);
  });

  it("sealed barrier stops the sweep", async () => {
    const { service, barrier, clock } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    barrier.sealed = true;
    await rejectsWith(service.rotateDueKeys(clock.now()), "sealed");
    await rejectsWith(service.deleteDueKeys(clock.now()), "sealed");
  });
});
