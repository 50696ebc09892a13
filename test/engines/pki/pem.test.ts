import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type PemBlock, readPemBlocks } from "../../../src/engines/pki/pem.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp } from "./fixtures.ts";

/** The largest PEM field a route accepts, in characters. */
const PEM_FIELD_LIMIT = 1024 * 1024;

/** Joins `line(0)`, `line(1)`, … up to `limit` characters, less 64 for the rest of a request. */
function fillField(line: (index: number) => string, limit = PEM_FIELD_LIMIT): string {
  const lines: string[] = [];
  let length = 0;
  for (let index = 0; length + 64 < limit; index++) {
    const next = line(index);
    lines.push(next);
    length += next.length;
  }
  return lines.join("");
}

/** Returns the blocks of `text` as label and base64 pairs. */
function blocksOf(text: string): [string, string][] {
  return readPemBlocks(text, "pem").map((block: PemBlock) => [
    block.label,
    block.der.toString("base64"),
  ]);
}

describe("readPemBlocks", () => {
  it("splits text into blocks", () => {
    const cases: [string, string, [string, string][]][] = [
      ["one block", "-----BEGIN A-----\nQUJD\n-----END A-----\n", [["A", "QUJD"]]],
      ["CRLF lines", "-----BEGIN A-----\r\nQUJD\r\n-----END A-----\r\n", [["A", "QUJD"]]],
      [
        "text around blocks",
        "intro\n-----BEGIN A-----\nQUJD\n-----END A-----\nmiddle\n-----BEGIN B C-----\nREVG\n-----END B C-----",
        [
          ["A", "QUJD"],
          ["B C", "REVG"],
        ],
      ],
      [
        "block after unterminated BEGIN",
        "-----BEGIN X-----\nQUJD\n-----BEGIN A-----\nREVG\n-----END A-----",
        [["A", "REVG"]],
      ],
      [
        "first END of the label closes",
        "-----BEGIN A-----\nQUJD\n-----END A----------END A-----",
        [["A", "QUJD"]],
      ],
      [
        "END before BEGIN ignored",
        "-----END A-----\n-----BEGIN A-----\nQUJD\n-----END A-----",
        [["A", "QUJD"]],
      ],
      [
        "END of earlier block not reused",
        "-----BEGIN A-----\nQUJD\n-----END A-----\n-----BEGIN A-----\nREVG\n-----END A-----",
        [
          ["A", "QUJD"],
          ["A", "REVG"],
        ],
      ],
      [
        "lower-case label skipped",
        "-----BEGIN a-----\nQUJD\n-----END a-----\n-----BEGIN A-----\nREVG\n-----END A-----",
        [["A", "REVG"]],
      ],
      [
        "BEGIN line without newline skipped",
        "-----BEGIN A-----QUJD\n-----END A-----\n-----BEGIN A-----\nREVG\n-----END A-----",
        [["A", "REVG"]],
      ],
    ];

    for (const [name, text, expected] of cases) {
      assert.deepEqual(blocksOf(text), expected, name);
    }
  });

  it("keeps END of other labels and BEGIN lines in body", () => {
    // Both bodies contain dashes, so they are not base64.
    const inputs = [
      "-----BEGIN A-----\nQUJD\n-----END B-----\n-----END A-----",
      "-----BEGIN A-----\nQUJD\n-----BEGIN A-----\nREVG\n-----END A-----",
    ];
    for (const text of inputs) {
      assert.throws(() => readPemBlocks(text, "pem"), /not base64/, text);
    }
  });

  it("rejects text without complete block", () => {
    for (const text of [
      "",
      "QUJD",
      "-----BEGIN A-----\nQUJD\n",
      "-----BEGIN A-----\nQUJD\n-----END B-----",
    ]) {
      assert.throws(
        () => readPemBlocks(text, "pem"),
        /contains no PEM block/,
        JSON.stringify(text),
      );
    }
  });

  // A scan that searched the rest of the text for each BEGIN line's END
  // line kept the event loop busy for about 18 s on the first input (one
  // request, two shared cores). This test checks only the result, so such
  // a regression shows as a slow test, not as a failure.
  it("scans unterminated BEGIN lines of 1 MiB", () => {
    const sameLabel = fillField(() => "-----BEGIN A-----\n");
    const distinctLabels = fillField((index) => `-----BEGIN A${index}-----\n`);
    const endsOfOtherLabels = fillField((index) => `-----BEGIN A-----\n-----END B${index}-----\n`);

    for (const text of [sameLabel, distinctLabels, endsOfOtherLabels]) {
      assert.throws(() => readPemBlocks(text, "pem"), /contains no PEM block/);
    }
  });
});

describe("PEM field of unterminated BEGIN lines", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
  });

  after(async () => {
    await t.close();
  });

  it("revoke rejects it naming the field", async () => {
    // JSON writes each newline as two characters, and the test app's body limit is 1 MiB.
    const certificate = fillField(() => "-----BEGIN CERTIFICATE-----\n", 1_000_000);

    const response = await t.request({
      method: "POST",
      url: "/v1/pki/revoke",
      payload: { certificate },
    });

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(response.json().field, "certificate");
  });
});
