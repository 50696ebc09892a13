import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateShareCounts } from "../../src/seal/seal-config.ts";
import { keywardError } from "./fixtures.ts";

describe("validateShareCounts", () => {
  const okCases: Array<[string, number, number]> = [
    ["ok one of one", 1, 1],
    ["ok two of two", 2, 2],
    ["ok three of five", 5, 3],
    ["ok 255 of 255", 255, 255],
    ["ok two of 255", 255, 2],
  ];
  for (const [title, shares, threshold] of okCases) {
    it(title, () => {
      validateShareCounts(shares, threshold);
    });
  }

  const failCases: Array<[string, number, number, string]> = [
    ["fail zero shares", 0, 0, "secret_shares"],
    ["fail negative shares", -1, 1, "secret_shares"],
    ["fail 256 shares", 256, 2, "secret_shares"],
    ["fail fractional shares", 2.5, 2, "secret_shares"],
    ["fail NaN shares", Number.NaN, 1, "secret_shares"],
    ["fail zero threshold", 3, 0, "secret_threshold"],
    ["fail threshold above shares", 3, 4, "secret_threshold"],
    ["fail threshold one of many", 3, 1, "secret_threshold"],
    ["fail threshold one of two", 2, 1, "secret_threshold"],
    ["fail fractional threshold", 3, 2.5, "secret_threshold"],
  ];
  for (const [title, shares, threshold, field] of failCases) {
    it(title, () => {
      assert.throws(
        () => validateShareCounts(shares, threshold),
        keywardError("invalid_field", field),
      );
    });
  }
});
