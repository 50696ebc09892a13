import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeBase64Body } from "../../../../src/engines/pki/est/encoding.ts";

/** Size of the request bodies below: 1 MiB. The server accepts bodies of up to 32 MiB by default. */
const BODY_SIZE = 1024 * 1024;

// An EST client with a valid enrolment secret or client certificate can send
// these bodies. A pattern with quadratic backtracking needs an estimated 20
// minutes of event-loop time for the first one (extrapolated from 0.44 s for
// 20,000 spaces). The timeout makes such a pattern fail the test instead of
// hanging the run.
describe("EST base64 body with long whitespace", { timeout: 60_000 }, () => {
  it("rejects spaces then an invalid character", () => {
    const body = `${" ".repeat(BODY_SIZE)}!`;
    assert.throws(() => decodeBase64Body(body), { code: "invalid_base64" });
  });

  it("rejects padding, spaces, then an invalid character", () => {
    const half = " ".repeat(BODY_SIZE / 2);
    const body = `AQ==${half}=${half}!`;
    assert.throws(() => decodeBase64Body(body), { code: "invalid_base64" });
  });

  it("rejects line breaks then an invalid character", () => {
    const body = `${"\r\n".repeat(BODY_SIZE / 2)}*`;
    assert.throws(() => decodeBase64Body(body), { code: "invalid_base64" });
  });

  it("accepts padding followed by line breaks", () => {
    assert.equal(decodeBase64Body("AQI=\r\n\r\n").toString("hex"), "0102");
  });

  it("accepts a long body wrapped in lines", () => {
    const lines = 16_000;
    const body = `${"A".repeat(64)}\r\n`.repeat(lines);
    assert.equal(decodeBase64Body(body).length, (lines * 64 * 3) / 4);
  });
});
