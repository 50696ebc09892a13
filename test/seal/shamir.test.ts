import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  combineShares,
  decodeShare,
  encodeShares,
  shareLength,
  splitSecret,
} from "../../src/seal/shamir.ts";
import { keywardError } from "./fixtures.ts";

describe("shamir", () => {
  it("threshold shares rebuild the secret", async () => {
    const secret = randomBytes(32);
    const shares = await splitSecret(secret, 5, 3);
    assert.equal(shares.length, 5);
    for (const share of shares) assert.equal(share.length, shareLength(32, 5));
    for (const subset of [
      [0, 1, 2],
      [4, 2, 0],
      [1, 3, 4],
      [0, 1, 2, 3, 4],
    ]) {
      const rebuilt = await combineShares(subset.map((i) => shares[i]!));
      assert.ok(Buffer.from(rebuilt).equals(secret));
    }
  });

  it("too few shares rebuild garbage", async () => {
    const secret = randomBytes(32);
    const shares = await splitSecret(secret, 5, 3);
    const rebuilt = await combineShares([shares[0]!, shares[1]!]);
    assert.equal(Buffer.from(rebuilt).equals(secret), false);
  });

  it("single share is the secret", async () => {
    const secret = randomBytes(32);
    const shares = await splitSecret(secret, 1, 1);
    assert.equal(shares.length, 1);
    assert.ok(Buffer.from(shares[0]!).equals(secret));
    assert.ok(Buffer.from(await combineShares(shares)).equals(secret));
  });

  it("split accepts a Buffer secret", async () => {
    const secret = Buffer.from(randomBytes(32));
    const shares = await splitSecret(secret, 2, 2);
    assert.ok(Buffer.from(await combineShares(shares)).equals(secret));
  });

  it("encodes shares as hex and base64", () => {
    const share = Uint8Array.from([0, 1, 0xfe, 0xff]);
    assert.deepEqual(encodeShares([share]), { keysHex: ["0001feff"], keysBase64: ["AAH+/w=="] });
  });

  describe("decodeShare", () => {
    const share = Buffer.from(randomBytes(33));
    const okCases: Array<[string, string]> = [
      ["ok lowercase hex", share.toString("hex")],
      ["ok uppercase hex", share.toString("hex").toUpperCase()],
      ["ok base64", share.toString("base64")],
      ["ok surrounding whitespace", ` ${share.toString("base64")}\n`],
    ];
    for (const [title, input] of okCases) {
      it(title, () => {
        assert.ok(decodeShare(input, 33).equals(share));
      });
    }

    const failCases: Array<[string, string]> = [
      ["fail empty", ""],
      ["fail hex too short", share.toString("hex").slice(2)],
      ["fail hex too long", `${share.toString("hex")}00`],
      ["fail base64 wrong length", randomBytes(32).toString("base64")],
      ["fail base64url alphabet", Buffer.from(new Uint8Array(33).fill(0xfb)).toString("base64url")],
      ["fail base64 missing padding", randomBytes(32).toString("base64").replace(/=+$/, "")],
      ["fail not an encoding", "this is not an unseal key at all, really!!"],
      ["fail hex with garbage", `${share.toString("hex").slice(0, 64)}zz`],
    ];
    for (const [title, input] of failCases) {
      it(title, () => {
        assert.throws(() => decodeShare(input, 33), keywardError("invalid_field", "key"));
      });
    }

    it("error message omits the input", () => {
      const input = "deadbeef".repeat(8);
      assert.throws(
        () => decodeShare(input, 33),
        (error: Error) => !error.message.includes("deadbeef"),
      );
    });
  });
});
