import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { decryptKeyring, encryptKeyring, Keyring } from "../../src/seal/keyring.ts";
import { keywardError } from "./fixtures.ts";

const installTime = new Date("2030-01-01T00:00:00.000Z");

describe("keyring", () => {
  it("round trips under the root key", () => {
    const rootKey = randomBytes(32);
    const keyring = Keyring.create(installTime).withNewTerm(new Date("2030-06-01T00:00:00.000Z"));
    keyring.term(1)!.encryptions = 41;
    const record = encryptKeyring(keyring, rootKey, (term) => term.encryptions + 1);

    const restored = decryptKeyring(record, rootKey);
    assert.equal(restored.activeTerm, 2);
    assert.deepEqual(
      restored.terms().map((term) => [term.term, term.installTime, term.encryptions]),
      [
        [1, "2030-01-01T00:00:00.000Z", 42],
        [2, "2030-06-01T00:00:00.000Z", 1],
      ],
    );
    assert.ok(restored.term(1)!.key.equals(keyring.term(1)!.key));
    assert.ok(restored.term(2)!.key.equals(keyring.term(2)!.key));
    assert.equal(restored.term(2)!.storedEncryptions, 1);
  });

  it("record contains no key bytes", () => {
    const rootKey = randomBytes(32);
    const keyring = Keyring.create(installTime);
    const record = encryptKeyring(keyring, rootKey, () => 0);
    assert.equal(record.includes(keyring.active.key), false);
    assert.equal(record.includes(Buffer.from(keyring.active.key.toString("base64"))), false);
    assert.equal(record.includes(rootKey), false);
  });

  it("wrong root key fails decryption", () => {
    const record = encryptKeyring(Keyring.create(installTime), randomBytes(32), () => 0);
    assert.throws(() => decryptKeyring(record, randomBytes(32)), keywardError("decryption_failed"));
  });

  it("modified record fails decryption", () => {
    const rootKey = randomBytes(32);
    const record = encryptKeyring(Keyring.create(installTime), rootKey, () => 0);
    record[record.length - 20] = record[record.length - 20]! ^ 0x80;
    assert.throws(() => decryptKeyring(record, rootKey), keywardError("decryption_failed"));
  });

  it("unknown format is storage failure", () => {
    const rootKey = randomBytes(32);
    const record = encryptKeyring(Keyring.create(installTime), rootKey, () => 0);
    record[0] = 9;
    assert.throws(() => decryptKeyring(record, rootKey), keywardError("storage_failure"));
    assert.throws(() => decryptKeyring(Buffer.from([1]), rootKey), keywardError("storage_failure"));
  });

  it("rotation shares existing terms", () => {
    const keyring = Keyring.create(installTime);
    const rotated = keyring.withNewTerm(installTime);
    assert.equal(rotated.term(1), keyring.term(1));
    assert.equal(keyring.activeTerm, 1);
    assert.equal(rotated.activeTerm, 2);
    assert.equal(rotated.active.key.equals(keyring.active.key), false);
  });

  it("destroy zeroes every key", () => {
    const keyring = Keyring.create(installTime).withNewTerm(installTime);
    keyring.destroy();
    for (const term of keyring.terms()) assert.ok(term.key.equals(Buffer.alloc(32)));
  });

  describe("fromJson", () => {
    const key = randomBytes(32).toString("base64");
    const term = { term: 1, key, installTime: "2030-01-01T00:00:00.000Z", encryptions: 0 };
    const cases: Array<[string, unknown]> = [
      ["fail null", null],
      ["fail wrong version", { version: 2, activeTerm: 1, terms: [term] }],
      ["fail missing terms", { version: 1, activeTerm: 1 }],
      ["fail active term missing", { version: 1, activeTerm: 2, terms: [term] }],
      [
        "fail active term not newest",
        { version: 1, activeTerm: 1, terms: [term, { ...term, term: 2 }] },
      ],
      ["fail duplicate term", { version: 1, activeTerm: 1, terms: [term, term] }],
      ["fail short key", { version: 1, activeTerm: 1, terms: [{ ...term, key: "AAAA" }] }],
      ["fail negative count", { version: 1, activeTerm: 1, terms: [{ ...term, encryptions: -1 }] }],
      ["fail term zero", { version: 1, activeTerm: 0, terms: [{ ...term, term: 0 }] }],
    ];
    for (const [title, json] of cases) {
      it(title, () => {
        assert.equal(Keyring.fromJson(json), undefined);
      });
    }

    it("ok valid keyring", () => {
      assert.equal(Keyring.fromJson({ version: 1, activeTerm: 1, terms: [term] })?.activeTerm, 1);
    });
  });
});
