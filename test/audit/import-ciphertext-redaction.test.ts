import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pathSensitiveFields } from "../../src/audit/redact.ts";

describe("import ciphertext redaction", () => {
  it("covers both import paths", () => {
    assert.deepEqual(pathSensitiveFields("transit/keys/orders/import"), ["ciphertext"]);
    assert.deepEqual(pathSensitiveFields("transit/keys/orders/import_version"), ["ciphertext"]);
    assert.deepEqual(pathSensitiveFields("team/a/keys/orders/import"), ["ciphertext"]);
  });

  it("leaves other paths alone", () => {
    assert.deepEqual(pathSensitiveFields("transit/decrypt/orders"), []);
    assert.deepEqual(pathSensitiveFields("transit/keys/orders"), []);
    assert.deepEqual(pathSensitiveFields("transit/keys/orders/import/extra"), []);
    assert.deepEqual(pathSensitiveFields("pki/keys/import"), []);
  });
});
