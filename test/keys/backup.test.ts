import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  backupKey,
  configureKey,
  decrypt,
  encrypt,
  type KeyType,
  type ManagedKey,
  restoreKey,
  rotateKey,
  sign,
  transitionState,
  trimKey,
  validateManagedKey,
  verify,
} from "../../src/keys/index.ts";
import { expectError, makeKey, NOW } from "./fixtures.ts";

const BACKUP_OPTIONS = { exportable: true, allowPlaintextBackup: true };

function backupable(type: KeyType, name = "test-key"): ManagedKey {
  return makeKey(type, BACKUP_OPTIONS, name);
}

/** Encodes a backup document the way backupKey does, for crafting malformed ones. */
function encodeDocument(document: unknown): string {
  return Buffer.from(JSON.stringify(document), "utf8").toString("base64");
}

function documentOf(key: ManagedKey): {
  format: string;
  formatVersion: number;
  key: Record<string, unknown>;
} {
  return JSON.parse(Buffer.from(backupKey(key, NOW), "base64").toString("utf8"));
}

describe("backup and restore", () => {
  for (const type of [
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p521",
    "rsa-2048",
    "hmac",
  ] as const) {
    it(`${type} round trip`, () => {
      const key = rotateKey(backupable(type), NOW);
      const restored = restoreKey(backupKey(key, NOW));
      assert.deepEqual(restored, key);
    });
  }

  it("restored key decrypts old data", () => {
    const key = backupable("aes256-gcm96");
    const { ciphertext } = encrypt(key, { plaintext: Buffer.from("kept") }, NOW);
    const restored = restoreKey(backupKey(key, NOW), "copy");
    assert.equal(restored.name, "copy");
    assert.equal(decrypt(restored, { ciphertext }, NOW).plaintext.toString(), "kept");
  });

  it("restored key verifies old signatures", () => {
    const key = backupable("ecdsa-p384");
    const input = Buffer.from("signed");
    const { signature } = sign(key, { input }, NOW);
    assert.equal(verify(restoreKey(backupKey(key, NOW)), { input, signature }, NOW).valid, true);
  });

  it("keeps trimmed and destroyed keys", () => {
    let key = backupable("aes256-gcm96");
    key = rotateKey(rotateKey(key, NOW), NOW);
    key = trimKey(configureKey(key, { minDecryptionVersion: 2 }, NOW), 2, NOW);
    assert.deepEqual(restoreKey(backupKey(key, NOW)), key);
    const destroyed = transitionState(transitionState(key, "deactivated", NOW), "destroyed", NOW);
    assert.deepEqual(restoreKey(backupKey(destroyed, NOW)), destroyed);
  });

  it("fail backup without both flags", () => {
    expectError(() => backupKey(makeKey("aes256-gcm96"), NOW), "invalid_state");
    expectError(
      () => backupKey(makeKey("aes256-gcm96", { exportable: true }), NOW),
      "invalid_state",
    );
    expectError(
      () => backupKey(makeKey("aes256-gcm96", { allowPlaintextBackup: true }), NOW),
      "invalid_state",
    );
  });

  it("fail backup of unusable states", () => {
    const key = backupable("aes256-gcm96");
    const compromised = transitionState(key, "compromised", NOW);
    const suspended = transitionState(key, "suspended", NOW);
    const deactivated = transitionState(key, "deactivated", NOW);
    expectError(() => backupKey(compromised, NOW), "invalid_state");
    expectError(() => backupKey(suspended, NOW), "invalid_state");
    expectError(() => backupKey(deactivated, NOW), "invalid_state");
  });

  it("fail invalid restore name", () => {
    expectError(
      () => restoreKey(backupKey(backupable("hmac"), NOW), "bad/name"),
      "invalid_field",
      "name",
    );
  });

  const encodingCases: [string, string][] = [
    ["fail empty backup", ""],
    ["fail not base64", "not base64!"],
    ["fail not json", Buffer.from("{not json").toString("base64")],
    ["fail json array", encodeDocument([1, 2])],
    ["fail json null", encodeDocument(null)],
  ];
  for (const [name, backup] of encodingCases) {
    it(name, () => {
      expectError(() => restoreKey(backup), "invalid_field", "backup");
    });
  }

  type Mutation = (document: {
    format: string;
    formatVersion: number;
    key: Record<string, unknown>;
  }) => void;
  const aes = () => rotateKey(backupable("aes256-gcm96"), NOW);
  const ed = () => backupable("ed25519");
  const mutationCases: [string, () => ManagedKey, Mutation, RegExp][] = [
    [
      "fail wrong format",
      aes,
      (d) => {
        d.format = "vault";
      },
      /format/,
    ],
    [
      "fail future format version",
      aes,
      (d) => {
        d.formatVersion = 2;
      },
      /formatVersion/,
    ],
    [
      "fail unknown document field",
      aes,
      (d) => {
        (d as Record<string, unknown>).extra = 1;
      },
      /extra/,
    ],
    [
      "fail missing key",
      aes,
      (d) => {
        delete (d as Record<string, unknown>).key;
      },
      /key/,
    ],
    [
      "fail unknown key field",
      aes,
      (d) => {
        d.key.policy = "x";
      },
      /key\.policy/,
    ],
    [
      "fail missing name",
      aes,
      (d) => {
        delete d.key.name;
      },
      /key\.name/,
    ],
    [
      "fail bad name",
      aes,
      (d) => {
        d.key.name = "../etc";
      },
      /key\.name/,
    ],
    [
      "fail unknown type",
      aes,
      (d) => {
        d.key.type = "aes512";
      },
      /key\.type/,
    ],
    [
      "fail unknown state",
      aes,
      (d) => {
        d.key.state = "retired";
      },
      /key\.state/,
    ],
    [
      "fail latest not integer",
      aes,
      (d) => {
        d.key.latestVersion = "2";
      },
      /key\.latestVersion/,
    ],
    [
      "fail missing latest version",
      aes,
      (d) => {
        d.key.latestVersion = 3;
      },
      /key\.versions\.3/,
    ],
    [
      "fail version beyond latest",
      aes,
      (d) => {
        d.key.latestVersion = 1;
      },
      /key\.versions\.2/,
    ],
    [
      "fail min decryption above latest",
      aes,
      (d) => {
        d.key.minDecryptionVersion = 3;
      },
      /minDecryptionVersion/,
    ],
    [
      "fail min encryption below decryption",
      aes,
      (d) => {
        d.key.minDecryptionVersion = 2;
        d.key.minEncryptionVersion = 1;
      },
      /minEncryptionVersion/,
    ],
    [
      "fail bad timestamp",
      aes,
      (d) => {
        d.key.createdAt = "yesterday";
      },
      /key\.createdAt/,
    ],
    [
      "fail bad rotation period",
      aes,
      (d) => {
        d.key.autoRotatePeriod = 5;
      },
      /autoRotatePeriod/,
    ],
    [
      "fail boolean as string",
      aes,
      (d) => {
        d.key.exportable = "true";
      },
      /key\.exportable/,
    ],
    [
      "fail convergent without derived",
      aes,
      (d) => {
        d.key.convergentEncryption = true;
      },
      /convergentEncryption/,
    ],
    [
      "fail derived ecdsa",
      () => backupable("ecdsa-p256"),
      (d) => {
        d.key.derived = true;
      },
      /key\.derived/,
    ],
    [
      "fail key size on aes",
      aes,
      (d) => {
        d.key.keySize = 32;
      },
      /keySize/,
    ],
    [
      "fail versions array",
      aes,
      (d) => {
        d.key.versions = [];
      },
      /key\.versions/,
    ],
    [
      "fail version key not number",
      aes,
      (d) => {
        (d.key.versions as Record<string, unknown>).x = {};
      },
      /key\.versions\.x/,
    ],
    [
      "fail version number mismatch",
      aes,
      (d) => {
        versionOf(d, "2").version = 1;
      },
      /versions\.2\.version/,
    ],
    [
      "fail unknown version field",
      aes,
      (d) => {
        versionOf(d, "1").note = "x";
      },
      /versions\.1\.note/,
    ],
    [
      "fail secret not base64",
      aes,
      (d) => {
        versionOf(d, "1").secret = "***";
      },
      /versions\.1\.secret/,
    ],
    [
      "fail short aes secret",
      aes,
      (d) => {
        versionOf(d, "1").secret = Buffer.alloc(16).toString("base64");
      },
      /versions\.1\.secret/,
    ],
    [
      "fail missing secret",
      aes,
      (d) => {
        delete versionOf(d, "2").secret;
      },
      /versions\.2\.secret/,
    ],
    [
      "fail short hmac key",
      aes,
      (d) => {
        versionOf(d, "1").hmacKey = "AAAA";
      },
      /versions\.1\.hmacKey/,
    ],
    [
      "fail public key on aes",
      aes,
      (d) => {
        versionOf(d, "1").publicKeyPem = "x";
      },
      /publicKeyPem/,
    ],
    [
      "fail secret not pkcs8",
      ed,
      (d) => {
        versionOf(d, "1").secret = Buffer.alloc(48).toString("base64");
      },
      /versions\.1\.secret/,
    ],
    [
      "fail mismatched public key",
      ed,
      (d) => {
        versionOf(d, "1").publicKeyPem = makeKey("ed25519", {}, "other").versions[
          "1"
        ]!.publicKeyPem;
      },
      /public key does not match/,
    ],
    [
      "fail wrong key type",
      ed,
      (d) => {
        versionOf(d, "1").secret = makeKey("ecdsa-p256").versions["1"]!.secret;
      },
      /does not match the key type/,
    ],
    [
      "fail destroyed with secrets",
      aes,
      (d) => {
        d.key.state = "destroyed";
      },
      /destroyed key/,
    ],
    [
      "fail secret on hmac key",
      () => backupable("hmac"),
      (d) => {
        versionOf(d, "1").secret = "AAAA";
      },
      /secret/,
    ],
  ];
  for (const [name, makeSource, mutate, pattern] of mutationCases) {
    it(name, () => {
      const document = documentOf(makeSource());
      mutate(document);
      const error = expectError(
        () => restoreKey(encodeDocument(document)),
        "invalid_field",
        "backup",
      );
      assert.match(error.message, pattern);
    });
  }

  it("fail destroyed key with foreign public key", () => {
    const destroyed = documentOf(
      transitionState(transitionState(ed(), "deactivated", NOW), "destroyed", NOW),
    );
    versionOf(destroyed, "1").publicKeyPem = makeKey("ecdsa-p256").versions["1"]!.publicKeyPem;
    const error = expectError(
      () => restoreKey(encodeDocument(destroyed)),
      "invalid_field",
      "backup",
    );
    assert.match(error.message, /not a public key of type ed25519/);
  });

  it("validates keys from other sources", () => {
    const key = backupable("hmac");
    assert.deepEqual(validateManagedKey(structuredClone(key), "key"), key);
    expectError(() => validateManagedKey({ ...key, state: "gone" }, "key"), "invalid_field", "key");
  });
});

function versionOf(
  document: { key: Record<string, unknown> },
  version: string,
): Record<string, unknown> {
  return (document.key.versions as Record<string, Record<string, unknown>>)[version]!;
}
