import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  configureKey,
  type KeyConfigChanges,
  type ManagedKey,
  rotateKey,
  rotationDue,
  transitionState,
  trimKey,
} from "../../src/keys/index.ts";
import { after, expectError, makeKey, NOW } from "./fixtures.ts";

/** Returns an AES key with versions 1 to 5. */
function fiveVersions(): ManagedKey {
  let key = makeKey("aes256-gcm96");
  for (let i = 0; i < 4; i++) key = rotateKey(key, NOW);
  return key;
}

describe("rotate key", () => {
  it("adds a fresh version", () => {
    const key = makeKey("aes256-gcm96");
    const rotated = rotateKey(key, after(60));
    assert.equal(rotated.latestVersion, 2);
    assert.equal(key.latestVersion, 1, "the input key must not change");
    assert.equal(rotated.lastRotatedAt, after(60).toISOString());
    assert.notEqual(rotated.versions["2"]!.secret, rotated.versions["1"]!.secret);
    assert.notEqual(rotated.versions["2"]!.hmacKey, rotated.versions["1"]!.hmacKey);
  });

  it("keeps hmac key size", () => {
    const rotated = rotateKey(makeKey("hmac", { keySize: 48 }), NOW);
    assert.equal(Buffer.from(rotated.versions["2"]!.hmacKey!, "base64").length, 48);
  });

  it("fail rotate when not active", () => {
    expectError(
      () => rotateKey(transitionState(makeKey("aes256-gcm96"), "suspended", NOW), NOW),
      "invalid_state",
    );
  });

  it("reports when rotation is due", () => {
    const key = configureKey(makeKey("aes256-gcm96"), { autoRotatePeriod: 3600 }, NOW);
    assert.equal(rotationDue(key, after(3599)), false);
    assert.equal(rotationDue(key, after(3600)), true);
    assert.equal(rotationDue(rotateKey(key, after(3600)), after(3601)), false);
    assert.equal(rotationDue(makeKey("aes256-gcm96"), after(10 ** 9)), false);
    assert.equal(rotationDue(transitionState(key, "suspended", NOW), after(7200)), false);
  });
});

describe("configure key", () => {
  const okCases: [string, KeyConfigChanges, Partial<ManagedKey>][] = [
    ["ok raise min decryption", { minDecryptionVersion: 3 }, { minDecryptionVersion: 3 }],
    ["ok set min encryption", { minEncryptionVersion: 4 }, { minEncryptionVersion: 4 }],
    [
      "ok both minimums",
      { minDecryptionVersion: 5, minEncryptionVersion: 5 },
      { minDecryptionVersion: 5, minEncryptionVersion: 5 },
    ],
    ["ok min encryption latest", { minEncryptionVersion: 0 }, { minEncryptionVersion: 0 }],
    ["ok allow deletion", { deletionAllowed: true }, { deletionAllowed: true }],
    ["ok enable export", { exportable: true }, { exportable: true }],
    ["ok enable backup", { allowPlaintextBackup: true }, { allowPlaintextBackup: true }],
    ["ok rotation period", { autoRotatePeriod: 86400 }, { autoRotatePeriod: 86400 }],
    ["ok disable rotation", { autoRotatePeriod: 0 }, { autoRotatePeriod: 0 }],
  ];
  for (const [name, changes, expected] of okCases) {
    it(name, () => {
      const key = fiveVersions();
      const configured = configureKey(key, changes, after(1));
      assert.deepEqual({ ...configured, updatedAt: key.updatedAt }, { ...key, ...expected });
      assert.equal(configured.updatedAt, after(1).toISOString());
    });
  }

  const failCases: [string, KeyConfigChanges, string][] = [
    ["fail min decryption zero", { minDecryptionVersion: 0 }, "min_decryption_version"],
    ["fail min decryption above latest", { minDecryptionVersion: 6 }, "min_decryption_version"],
    ["fail min decryption fractional", { minDecryptionVersion: 2.5 }, "min_decryption_version"],
    ["fail min encryption above latest", { minEncryptionVersion: 6 }, "min_encryption_version"],
    ["fail min encryption negative", { minEncryptionVersion: -1 }, "min_encryption_version"],
    [
      "fail encryption below decryption",
      { minDecryptionVersion: 4, minEncryptionVersion: 3 },
      "min_encryption_version",
    ],
    ["fail rotation under an hour", { autoRotatePeriod: 3599 }, "auto_rotate_period"],
    ["fail rotation negative", { autoRotatePeriod: -3600 }, "auto_rotate_period"],
    [
      "fail deletion not boolean",
      { deletionAllowed: "yes" as unknown as boolean },
      "deletion_allowed",
    ],
  ];
  for (const [name, changes, field] of failCases) {
    it(name, () => {
      expectError(() => configureKey(fiveVersions(), changes, NOW), "invalid_field", field);
    });
  }

  it("fail decryption above min encryption", () => {
    const key = configureKey(fiveVersions(), { minEncryptionVersion: 3 }, NOW);
    expectError(
      () => configureKey(key, { minDecryptionVersion: 4 }, NOW),
      "invalid_field",
      "min_decryption_version",
    );
  });

  it("fail export flags going back", () => {
    const key = configureKey(fiveVersions(), { exportable: true, allowPlaintextBackup: true }, NOW);
    expectError(() => configureKey(key, { exportable: false }, NOW), "invalid_field", "exportable");
    expectError(
      () => configureKey(key, { allowPlaintextBackup: false }, NOW),
      "invalid_field",
      "allow_plaintext_backup",
    );
  });

  it("fail min decryption into trimmed", () => {
    const key = trimKey(configureKey(fiveVersions(), { minDecryptionVersion: 3 }, NOW), 3, NOW);
    expectError(
      () => configureKey(key, { minDecryptionVersion: 2 }, NOW),
      "invalid_field",
      "min_decryption_version",
    );
  });
});

describe("trim key", () => {
  it("deletes older versions", () => {
    const key = configureKey(
      fiveVersions(),
      { minDecryptionVersion: 3, minEncryptionVersion: 4 },
      NOW,
    );
    const trimmed = trimKey(key, 3, after(1));
    assert.deepEqual(Object.keys(trimmed.versions).sort(), ["3", "4", "5"]);
    assert.equal(trimmed.minAvailableVersion, 3);
    assert.equal(Object.keys(key.versions).length, 5, "the input key must not change");
  });

  const failCases: [string, Partial<ManagedKey>, number][] = [
    ["fail above min decryption", { minDecryptionVersion: 2 }, 3],
    ["fail above min encryption", { minDecryptionVersion: 4, minEncryptionVersion: 4 }, 5],
    ["fail zero", { minDecryptionVersion: 3 }, 0],
    ["fail fractional", { minDecryptionVersion: 3 }, 1.5],
    ["fail below current", { minDecryptionVersion: 3, minAvailableVersion: 3 }, 2],
  ];
  for (const [name, settings, value] of failCases) {
    it(name, () => {
      const key = { ...fiveVersions(), ...settings };
      expectError(() => trimKey(key, value, NOW), "invalid_field", "min_available_version");
    });
  }

  it("ok at min encryption when set", () => {
    const key = configureKey(
      fiveVersions(),
      { minDecryptionVersion: 4, minEncryptionVersion: 4 },
      NOW,
    );
    assert.equal(trimKey(key, 4, NOW).minAvailableVersion, 4);
  });
});
