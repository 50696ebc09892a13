import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { isKmipDecodeError, KmipDecodeError } from "../../src/kmip/errors.ts";
import { itemsEqual, type KmipItem } from "../../src/kmip/item.ts";
import { decodeTtlv, encodeTtlv, ttlvMessageLength } from "../../src/kmip/ttlv.ts";
import { bindAll, caseFiles, seededRandom } from "./vectors.ts";

const TAG = 0x420020;

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/[\s|]/g, ""), "hex");
}

// The encoding examples of the KMIP Specification (version 1.2, section 9.1.2).
const SPEC_EXAMPLES: [string, KmipItem, string][] = [
  [
    "Integer 8",
    { tag: TAG, type: "Integer", value: 8 },
    "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
  ],
  [
    "LongInteger 123456789000000000",
    { tag: TAG, type: "LongInteger", value: 123456789000000000n },
    "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
  ],
  [
    "BigInteger 1234567890000000000000000000",
    { tag: TAG, type: "BigInteger", value: 1234567890000000000000000000n },
    "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
  ],
  [
    "Enumeration 255",
    { tag: TAG, type: "Enumeration", value: 255 },
    "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
  ],
  [
    "Boolean true",
    { tag: TAG, type: "Boolean", value: true },
    "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
  ],
  [
    "TextString Hello World",
    { tag: TAG, type: "TextString", value: "Hello World" },
    "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
  ],
  [
    "ByteString 010203",
    { tag: TAG, type: "ByteString", value: Buffer.from([1, 2, 3]) },
    "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
  ],
  [
    "DateTime 2008-03-14T11:56:40Z",
    { tag: TAG, type: "DateTime", value: 1205495800n },
    "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
  ],
  [
    "Interval 10 days",
    { tag: TAG, type: "Interval", value: 864000 },
    "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
  ],
  [
    "Structure",
    {
      tag: TAG,
      type: "Structure",
      value: [
        { tag: 0x420004, type: "Enumeration", value: 254 },
        { tag: 0x420005, type: "Integer", value: 255 },
      ],
    },
    "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
  ],
];

describe("TTLV specification examples", () => {
  for (const [name, item, bytes] of SPEC_EXAMPLES) {
    it(`ok encode ${name}`, () => {
      assert.equal(encodeTtlv(item).toString("hex"), hex(bytes).toString("hex"));
    });
    it(`ok decode ${name}`, () => {
      assert.ok(itemsEqual(decodeTtlv(hex(bytes)), item));
    });
  }
});

describe("TTLV values", () => {
  const cases: [string, KmipItem][] = [
    ["negative Integer", { tag: TAG, type: "Integer", value: -2147483648 }],
    ["max Enumeration", { tag: TAG, type: "Enumeration", value: 0xffffffff }],
    ["negative BigInteger", { tag: TAG, type: "BigInteger", value: -1n }],
    ["BigInteger at 8-byte edge", { tag: TAG, type: "BigInteger", value: 1n << 63n }],
    ["negative DateTime", { tag: TAG, type: "DateTime", value: -1n }],
    ["DateTimeExtended", { tag: TAG, type: "DateTimeExtended", value: 1_700_000_000_123_456n }],
    ["empty TextString", { tag: TAG, type: "TextString", value: "" }],
    ["TextString with BOM", { tag: TAG, type: "TextString", value: "\uFEFFé✓" }],
    ["8-byte ByteString", { tag: TAG, type: "ByteString", value: Buffer.alloc(8, 0xff) }],
    ["empty Structure", { tag: TAG, type: "Structure", value: [] }],
    ["extension tag", { tag: 0x540001, type: "Boolean", value: false }],
  ];
  for (const [name, item] of cases) {
    it(`ok round trip ${name}`, () => {
      assert.ok(itemsEqual(decodeTtlv(encodeTtlv(item)), item));
    });
  }

  it("sign-extends BigInteger to 8 bytes", () => {
    assert.equal(
      encodeTtlv({ tag: TAG, type: "BigInteger", value: -1n }).subarray(8).toString("hex"),
      "ffffffffffffffff",
    );
    assert.equal(
      encodeTtlv({ tag: TAG, type: "BigInteger", value: 1n << 63n }).readUInt32BE(4),
      16,
    );
  });

  it("rejects out-of-range values on encode", () => {
    assert.throws(() => encodeTtlv({ tag: TAG, type: "Integer", value: 2 ** 31 }), {
      code: "internal",
    });
    assert.throws(() => encodeTtlv({ tag: TAG, type: "Enumeration", value: -1 }), {
      code: "internal",
    });
    assert.throws(() => encodeTtlv({ tag: 0x1000000, type: "Boolean", value: true }), {
      code: "internal",
    });
  });
});

describe("TTLV bad input", () => {
  const integer = "420020 02 00000004 00000008 00000000";
  const cases: [string, string, "InvalidMessage" | "InvalidField"][] = [
    ["fail empty input", "", "InvalidMessage"],
    ["fail truncated header", "420020 02 0000", "InvalidMessage"],
    ["fail truncated value", "420020 02 00000004 00000008", "InvalidMessage"],
    ["fail trailing bytes", `${integer} 00`, "InvalidMessage"],
    ["fail Integer length 8", "420020 02 00000008 00000008 00000000", "InvalidMessage"],
    ["fail Enumeration length 2", "420020 05 00000002 00010000 00000000", "InvalidMessage"],
    ["fail LongInteger length 4", "420020 03 00000004 00000001 00000000", "InvalidMessage"],
    ["fail Boolean length 1", "420020 06 00000001 01000000 00000000", "InvalidMessage"],
    ["fail Boolean value 2", "420020 06 00000008 00000000 00000002", "InvalidField"],
    ["fail Interval length 8", "420020 0A 00000008 00000000 00000001", "InvalidMessage"],
    ["fail DateTime length 4", "420020 09 00000004 00000001 00000000", "InvalidMessage"],
    ["fail BigInteger length 4", "420020 04 00000004 00000001 00000000", "InvalidMessage"],
    ["fail BigInteger length 0", "420020 04 00000000", "InvalidMessage"],
    ["fail non-zero Integer padding", "420020 02 00000004 00000008 00000001", "InvalidMessage"],
    ["fail non-zero text padding", "420020 07 00000001 41000000 00000100", "InvalidMessage"],
    ["fail invalid UTF-8", "420020 07 00000002 C328000000000000", "InvalidField"],
    ["fail unknown type 0x0C", "420020 0C 00000004 00000008 00000000", "InvalidMessage"],
    ["fail type 0x00", "420020 00 00000004 00000008 00000000", "InvalidMessage"],
    ["fail tag outside ranges", "430020 02 00000004 00000008 00000000", "InvalidMessage"],
    ["fail Structure length not multiple of 8", "420020 01 00000004 00000000", "InvalidMessage"],
    ["fail child past Structure end", `420020 01 00000008 ${integer}`, "InvalidMessage"],
    ["fail Structure length past input", "420020 01 00000100 00000000 00000000", "InvalidMessage"],
    ["fail huge length", "420020 08 FFFFFFF8 00000000", "InvalidMessage"],
  ];
  for (const [name, bytes, reason] of cases) {
    it(name, () => {
      assert.throws(
        () => decodeTtlv(hex(bytes)),
        (error: unknown) => error instanceof KmipDecodeError && error.resultReason === reason,
      );
    });
  }

  it("fail message above maximum size", () => {
    const item: KmipItem = { tag: TAG, type: "ByteString", value: Buffer.alloc(100) };
    assert.throws(() => decodeTtlv(encodeTtlv(item), { maxMessageBytes: 64 }), {
      resultReason: "InvalidMessage",
    });
  });

  it("fail nesting beyond maximum depth", () => {
    let item: KmipItem = { tag: TAG, type: "Integer", value: 1 };
    for (let depth = 0; depth < 5; depth++) item = { tag: TAG, type: "Structure", value: [item] };
    const bytes = encodeTtlv(item);
    assert.ok(decodeTtlv(bytes, { maxDepth: 6 }));
    assert.throws(() => decodeTtlv(bytes, { maxDepth: 5 }), { resultReason: "InvalidMessage" });
  });

  it("reads message length from header", () => {
    const bytes = encodeTtlv(SPEC_EXAMPLES[9]![1]);
    assert.equal(ttlvMessageLength(bytes.subarray(0, 8)), bytes.length);
    assert.throws(() => ttlvMessageLength(bytes.subarray(0, 8), { maxMessageBytes: 16 }), {
      resultReason: "InvalidMessage",
    });
    assert.throws(() => ttlvMessageLength(bytes.subarray(0, 7)), {
      resultReason: "InvalidMessage",
    });
  });
});

describe("TTLV fuzzing", () => {
  const random = seededRandom(20261204);
  const randomByte = () => Math.floor(random() * 256);

  /** Decodes and returns the error, failing the test for anything but KmipDecodeError. */
  function decodeOrDecodeError(bytes: Uint8Array): void {
    try {
      decodeTtlv(bytes);
    } catch (error) {
      if (!isKmipDecodeError(error)) {
        assert.fail(`decodeTtlv raised ${String(error)} for ${Buffer.from(bytes).toString("hex")}`);
      }
    }
  }

  const messages = caseFiles()
    .slice(0, 12)
    .flatMap((file) => bindAll(readFileSync(file.path, "utf8")))
    .map((item) => encodeTtlv(item));

  it("raises only KmipDecodeError on truncation", () => {
    for (const message of messages.slice(0, 20)) {
      for (let length = 0; length < message.length; length++) {
        decodeOrDecodeError(message.subarray(0, length));
      }
    }
  });

  it("raises only KmipDecodeError on mutation", () => {
    let rejected = 0;
    for (let round = 0; round < 20_000; round++) {
      const message = Buffer.from(messages[round % messages.length]!);
      const flips = 1 + (round % 4);
      for (let flip = 0; flip < flips; flip++) {
        const position = Math.floor(random() * message.length);
        message[position] = randomByte();
      }
      try {
        decodeTtlv(message);
      } catch (error) {
        if (!isKmipDecodeError(error)) assert.fail(`decodeTtlv raised ${String(error)}`);
        rejected++;
      }
    }
    assert.ok(rejected > 0);
  });

  it("raises only KmipDecodeError on random bytes", () => {
    for (let round = 0; round < 5_000; round++) {
      const bytes = Buffer.from(Array.from({ length: 8 + (round % 64) }, randomByte));
      bytes[0] = 0x42;
      decodeOrDecodeError(bytes);
    }
  });
});
