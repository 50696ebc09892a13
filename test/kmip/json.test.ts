import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { isKmipDecodeError, KmipDecodeError } from "../../src/kmip/errors.ts";
import { itemsEqual, type KmipItem } from "../../src/kmip/item.ts";
import { decodeJson, encodeJson, itemFromJson, itemToJson } from "../../src/kmip/json.ts";
import { tagNumber } from "../../src/kmip/tags.ts";
import { bindAll, caseFiles, seededRandom } from "./vectors.ts";

describe("JSON encoding", () => {
  const message: KmipItem = {
    tag: tagNumber("RequestMessage"),
    type: "Structure",
    value: [
      { tag: tagNumber("BatchCount"), type: "Integer", value: 1 },
      { tag: tagNumber("Operation"), type: "Enumeration", value: 1 },
      { tag: tagNumber("CryptographicUsageMask"), type: "Integer", value: 12 },
      { tag: tagNumber("LeaseTime"), type: "Interval", value: 3600 },
      { tag: tagNumber("Sensitive"), type: "Boolean", value: false },
      { tag: tagNumber("Modulus"), type: "BigInteger", value: -2n },
      { tag: tagNumber("UsageLimitsTotal"), type: "LongInteger", value: 1n << 60n },
      { tag: tagNumber("ActivationDate"), type: "DateTime", value: 0n },
      { tag: tagNumber("Data"), type: "ByteString", value: Buffer.from("hi") },
      { tag: 0x540010, type: "TextString", value: "vendor" },
    ],
  };

  it("writes the KMIP JSON forms", () => {
    assert.deepEqual(itemToJson(message), {
      tag: "RequestMessage",
      value: [
        { tag: "BatchCount", type: "Integer", value: 1 },
        { tag: "Operation", type: "Enumeration", value: "Create" },
        { tag: "CryptographicUsageMask", type: "Integer", value: "Encrypt|Decrypt" },
        { tag: "LeaseTime", type: "Interval", value: 3600 },
        { tag: "Sensitive", type: "Boolean", value: false },
        { tag: "Modulus", type: "BigInteger", value: "0xfffffffffffffffe" },
        { tag: "UsageLimitsTotal", type: "LongInteger", value: "0x1000000000000000" },
        { tag: "ActivationDate", type: "DateTime", value: "1970-01-01T00:00:00+00:00" },
        { tag: "Data", type: "ByteString", value: "6869" },
        { tag: "0x540010", type: "TextString", value: "vendor" },
      ],
    });
  });

  it("round trips a message", () => {
    assert.ok(itemsEqual(decodeJson(encodeJson(message)), message));
  });

  it("reads numbers and hex text", () => {
    const item = itemFromJson({
      tag: "RequestPayload",
      value: [
        { tag: "Operation", type: "Enumeration", value: 10 },
        { tag: "Operation", type: "Enumeration", value: "0x0000000A" },
        { tag: "BatchCount", type: "Integer", value: "0x00000002" },
      ],
    });
    assert.ok(item.type === "Structure");
    assert.deepEqual(
      item.value.map((child) => child.value),
      [10, 10, 2],
    );
  });
});

describe("JSON bad input", () => {
  const cases: [string, string, "InvalidMessage" | "InvalidField"][] = [
    ["fail not JSON", "{", "InvalidMessage"],
    ["fail array root", "[]", "InvalidField"],
    ["fail missing tag", '{"value":[]}', "InvalidField"],
    ["fail unknown tag", '{"tag":"NoSuchTag","value":[]}', "InvalidField"],
    ["fail unknown key", '{"tag":"RequestMessage","value":[],"x":1}', "InvalidField"],
    ["fail unknown type", '{"tag":"BatchCount","type":"Float","value":1}', "InvalidField"],
    ["fail Structure value not array", '{"tag":"RequestMessage","value":{}}', "InvalidField"],
    ["fail Integer as float", '{"tag":"BatchCount","type":"Integer","value":1.5}', "InvalidField"],
    [
      "fail Integer out of range",
      '{"tag":"BatchCount","type":"Integer","value":4294967296}',
      "InvalidField",
    ],
    ["fail Boolean as text", '{"tag":"Sensitive","type":"Boolean","value":"true"}', "InvalidField"],
    [
      "fail TextString as number",
      '{"tag":"NameValue","type":"TextString","value":1}',
      "InvalidField",
    ],
    [
      "fail negative Enumeration",
      '{"tag":"Operation","type":"Enumeration","value":-1}',
      "InvalidField",
    ],
  ];
  for (const [name, text, reason] of cases) {
    it(name, () => {
      assert.throws(
        () => decodeJson(text),
        (error: unknown) => error instanceof KmipDecodeError && error.resultReason === reason,
      );
    });
  }

  it("fail nesting beyond maximum depth", () => {
    let json: unknown = { tag: "BatchCount", type: "Integer", value: 1 };
    for (let depth = 0; depth < 5; depth++) json = { tag: "RequestMessage", value: [json] };
    assert.ok(itemFromJson(json, { maxDepth: 6 }));
    assert.throws(() => itemFromJson(json, { maxDepth: 5 }), { resultReason: "InvalidMessage" });
  });
});

describe("JSON fuzzing", () => {
  it("raises only KmipDecodeError on mutation", () => {
    const random = seededRandom(777);
    const documents = caseFiles()
      .slice(0, 8)
      .flatMap((file) => bindAll(readFileSync(file.path, "utf8")))
      .map((item) => encodeJson(item));
    const alphabet = '{}[]":,0x1-etnu ';
    for (let round = 0; round < 5_000; round++) {
      const characters = [...documents[round % documents.length]!];
      for (let edit = 0; edit < 1 + (round % 3); edit++) {
        const position = Math.floor(random() * characters.length);
        characters[position] = alphabet[Math.floor(random() * alphabet.length)]!;
      }
      try {
        decodeJson(characters.join(""));
      } catch (error) {
        if (!isKmipDecodeError(error)) assert.fail(`decodeJson raised ${String(error)}`);
      }
    }
  });
});
