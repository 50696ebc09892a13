import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KmipDecodeError } from "../../src/kmip/errors.ts";
import { decodeJson } from "../../src/kmip/json.ts";
import { decodeXml } from "../../src/kmip/xml.ts";

function textValue(xmlValue: string): unknown {
  const item = decodeXml(`<Name type="TextString" value="${xmlValue}"/>`);
  return item.type === "TextString" ? item.value : undefined;
}

function assertInvalid(decode: () => unknown, message: RegExp) {
  assert.throws(decode, (error: unknown) => {
    assert.ok(error instanceof KmipDecodeError);
    assert.match(error.message, message);
    return true;
  });
}

describe("xml attribute references", () => {
  it("decodes predefined and character references", () => {
    assert.equal(textValue("a&amp;b&lt;&gt;&quot;&apos;&#x41;&#66;"), "a&b<>\"'AB");
  });

  it("normalizes literal tabs and line breaks", () => {
    assert.equal(textValue("a\tb\nc\rd"), "a b c d");
  });

  it("rejects names of Object.prototype as entities", () => {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      assertInvalid(() => textValue(`&${name};`), /unknown reference/);
    }
  });

  it("rejects an ampersand without a reference", () => {
    assertInvalid(() => textValue("a&b"), /'&' that starts no reference/);
    assertInvalid(() => textValue("&amp"), /'&' that starts no reference/);
  });

  // A reader that searches for ";" from each "&" needs minutes for these values.
  it("rejects a value of many ampersands", () => {
    assertInvalid(() => textValue("&".repeat(300_000)), /'&' that starts no reference/);
    assertInvalid(() => textValue("&amp".repeat(100_000)), /'&' that starts no reference/);
  });

  it("decodes a value of many references", () => {
    assert.equal(textValue("&amp;".repeat(100_000)), "&".repeat(100_000));
  });
});

describe("date-time time zone offsets", () => {
  const dateTime = (text: string) =>
    decodeJson(JSON.stringify({ tag: "InitialDate", type: "DateTime", value: text }));

  it("accepts offsets up to 23:59", () => {
    const item = dateTime("2020-01-02T00:00:00+23:59");
    assert.equal(item.type, "DateTime");
    assert.equal(item.value, 1_577_923_200n - 86_340n);
  });

  it("rejects an offset hour above 23", () => {
    assertInvalid(() => dateTime("2020-01-01T00:00:00+99:00"), /invalid DateTime value/);
    assertInvalid(() => dateTime("2020-01-01T00:00:00-24:00"), /invalid DateTime value/);
  });

  it("rejects an offset minute above 59", () => {
    assertInvalid(() => dateTime("2020-01-01T00:00:00+01:60"), /invalid DateTime value/);
  });
});
