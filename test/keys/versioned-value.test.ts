import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatVersionedValue, parseVersionedValue } from "../../src/keys/index.ts";
import { expectError } from "./fixtures.ts";

describe("versioned values", () => {
  it("formats and parses round trip", () => {
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 253]);
    const text = formatVersionedValue(7, bytes);
    assert.equal(text, `keyward:v7:${bytes.toString("base64")}`);
    const parsed = parseVersionedValue(text, "ciphertext", "invalid_ciphertext");
    assert.equal(parsed.version, 7);
    assert.deepEqual(parsed.bytes, bytes);
  });

  it("uses base64url for JWS values", () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xfe]);
    const text = formatVersionedValue(1, bytes, "base64url");
    assert.equal(text, "keyward:v1:-__-");
    assert.deepEqual(
      parseVersionedValue(text, "signature", "invalid_signature", "base64url").bytes,
      bytes,
    );
  });

  const malformed: [string, unknown][] = [
    ["fail not a string", 42],
    ["fail empty", ""],
    ["fail vault prefix", "vault:v1:AAAA"],
    ["fail missing version", "keyward:v:AAAA"],
    ["fail version zero", "keyward:v0:AAAA"],
    ["fail leading zero", "keyward:v01:AAAA"],
    ["fail negative version", "keyward:v-1:AAAA"],
    ["fail fractional version", "keyward:v1.5:AAAA"],
    ["fail huge version", "keyward:v1234567890:AAAA"],
    ["fail missing separator", "keyward:v1AAAA"],
    ["fail empty data", "keyward:v1:"],
    ["fail bad characters", "keyward:v1:AA*A"],
    ["fail missing padding", "keyward:v1:AAA"],
    ["fail url alphabet", "keyward:v1:AA-_"],
    ["fail whitespace", "keyward:v1:AAAA "],
    ["fail non-canonical bits", "keyward:v1:AB=="],
    ["fail extra separator", "keyward:v1:AAAA:AAAA"],
  ];
  for (const [name, value] of malformed) {
    it(name, () => {
      const error = expectError(
        () => parseVersionedValue(value, "ciphertext", "invalid_ciphertext"),
        "invalid_ciphertext",
        "ciphertext",
      );
      assert.match(error.message, /^ciphertext is invalid/);
    });
  }

  it("fail base64url with padding", () => {
    expectError(
      () => parseVersionedValue("keyward:v1:AA==", "signature", "invalid_signature", "base64url"),
      "invalid_signature",
      "signature",
    );
  });
});
