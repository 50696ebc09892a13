import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeBase64,
  decodeOptionalBase64,
  parseDurationSeconds,
} from "../../../src/engines/transit/encoding.ts";
import { KeywardError } from "../../../src/errors.ts";

describe("decodeBase64", () => {
  const valid: Array<[string, string, string]> = [
    ["ok empty string", "", ""],
    ["ok two padding characters", "YQ==", "61"],
    ["ok one padding character", "YWI=", "6162"],
    ["ok no padding", "YWJj", "616263"],
    ["ok plus and slash", "+/+/", "fbffbf"],
  ];
  for (const [title, input, hex] of valid) {
    it(title, () => {
      assert.equal(decodeBase64(input, "plaintext").toString("hex"), hex);
    });
  }

  const invalid: Array<[string, string]> = [
    ["fail missing padding", "YQ"],
    ["fail url-safe alphabet", "-_-_"],
    ["fail embedded newline", "YWJj\nYWJj"],
    ["fail embedded space", "YW Jj"],
    ["fail padding in middle", "YQ==YWJj"],
    ["fail three padding characters", "Y==="],
    ["fail non-ascii letters", "ÄÖÜß"],
  ];
  for (const [title, input] of invalid) {
    it(title, () => {
      assert.throws(
        () => decodeBase64(input, "batch_input[3].plaintext"),
        (error: unknown) =>
          error instanceof KeywardError &&
          error.code === "invalid_base64" &&
          error.field === "batch_input[3].plaintext" &&
          error.message.includes("batch_input[3].plaintext"),
      );
    });
  }

  it("optional values may be absent", () => {
    assert.equal(decodeOptionalBase64(undefined, "context"), undefined);
    assert.equal(decodeOptionalBase64("", "context"), undefined);
    assert.equal(decodeOptionalBase64("YQ==", "context")?.toString(), "a");
  });
});

describe("parseDurationSeconds", () => {
  const valid: Array<[string, number | string, number]> = [
    ["ok number of seconds", 3600, 3600],
    ["ok zero", 0, 0],
    ["ok digit string", "7200", 7200],
    ["ok hours", "24h", 86400],
    ["ok hours and minutes", "1h30m", 5400],
    ["ok fractional hours", "1.5h", 5400],
    ["ok seconds suffix", "90s", 90],
    ["ok days", "30d", 2_592_000],
  ];
  for (const [title, input, seconds] of valid) {
    it(title, () => {
      assert.equal(parseDurationSeconds(input, "auto_rotate_period"), seconds);
    });
  }

  const invalid: Array<[string, number | string]> = [
    ["fail negative number", -1],
    ["fail fractional number", 1.5],
    ["fail unsafe integer", 2 ** 60],
    ["fail empty string", ""],
    ["fail unknown unit", "5w"],
    ["fail milliseconds", "500ms"],
    ["fail sub-second result", "0.5s"],
    ["fail trailing garbage", "1h and more"],
    ["fail leading garbage", "about 1h"],
    ["fail very long string", "1h".repeat(40)],
    ["fail negative duration", "-1h"],
  ];
  for (const [title, input] of invalid) {
    it(title, () => {
      assert.throws(
        () => parseDurationSeconds(input, "auto_rotate_period"),
        (error: unknown) =>
          error instanceof KeywardError &&
          error.code === "invalid_field" &&
          error.field === "auto_rotate_period",
      );
    });
  }
});
