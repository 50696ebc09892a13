import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { isKmipDecodeError, KmipDecodeError } from "../../src/kmip/errors.ts";
import {
  findChild,
  isPlaceholder,
  itemsEqual,
  type KmipItem,
  type StructureItem,
} from "../../src/kmip/item.ts";
import { tagNumber } from "../../src/kmip/tags.ts";
import { decodeXml, decodeXmlTemplates, encodeXml } from "../../src/kmip/xml.ts";
import { bindAll, caseFiles, seededRandom } from "./vectors.ts";

function scalar(xml: string): KmipItem {
  return decodeXml(xml);
}

describe("XML scalar values", () => {
  const cases: [string, string, KmipItem][] = [
    [
      "Integer",
      '<BatchCount type="Integer" value="-5"/>',
      { tag: 0x42000d, type: "Integer", value: -5 },
    ],
    [
      "Integer hex",
      '<BatchCount type="Integer" value="0xFFFFFFFF"/>',
      { tag: 0x42000d, type: "Integer", value: -1 },
    ],
    [
      "usage mask names",
      '<CryptographicUsageMask type="Integer" value="Encrypt Decrypt"/>',
      { tag: 0x42002c, type: "Integer", value: 12 },
    ],
    [
      "usage mask with bar",
      '<CryptographicUsageMask type="Integer" value="Sign|Verify"/>',
      { tag: 0x42002c, type: "Integer", value: 3 },
    ],
    [
      "Enumeration name",
      '<Operation type="Enumeration" value="Create"/>',
      { tag: 0x42005c, type: "Enumeration", value: 1 },
    ],
    [
      "Enumeration hex",
      '<OpaqueDataType type="Enumeration" value="0x80000001"/>',
      { tag: 0x420059, type: "Enumeration", value: 0x80000001 },
    ],
    [
      "BigInteger",
      '<Modulus type="BigInteger" value="0000000000010001"/>',
      { tag: tagNumber("Modulus"), type: "BigInteger", value: 65537n },
    ],
    [
      "DateTime with offset",
      '<ActivationDate type="DateTime" value="2000-01-01T10:00:00+10:00"/>',
      { tag: 0x420001, type: "DateTime", value: 946684800n },
    ],
    [
      "DateTime hex",
      '<ActivationDate type="DateTime" value="0x0000000047DA67F8"/>',
      { tag: 0x420001, type: "DateTime", value: 1205495800n },
    ],
    [
      "Interval",
      '<LeaseTime type="Interval" value="3600"/>',
      { tag: tagNumber("LeaseTime"), type: "Interval", value: 3600 },
    ],
    [
      "Boolean",
      '<Sensitive type="Boolean" value="true"/>',
      { tag: tagNumber("Sensitive"), type: "Boolean", value: true },
    ],
    [
      "TextString with entities",
      '<NameValue type="TextString" value="a&amp;b &lt;&#x41;&#10;"/>',
      { tag: tagNumber("NameValue"), type: "TextString", value: "a&b <A\n" },
    ],
    [
      "ByteString",
      '<Data type="ByteString" value="00ff"/>',
      { tag: tagNumber("Data"), type: "ByteString", value: Buffer.from([0, 255]) },
    ],
    [
      "extension tag",
      '<TTLV tag="0x540001" type="TextString" value="x"/>',
      { tag: 0x540001, type: "TextString", value: "x" },
    ],
  ];
  for (const [name, xml, expected] of cases) {
    it(`ok ${name}`, () => {
      const item = scalar(xml);
      assert.ok(
        itemsEqual(item, expected),
        `got ${JSON.stringify(item, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
      );
      assert.ok(itemsEqual(decodeXml(encodeXml(item)), expected));
    });
  }
});

describe("XML rendering", () => {
  it("writes masks and enumerations by name", () => {
    const xml = encodeXml({
      tag: tagNumber("Attributes"),
      type: "Structure",
      value: [
        { tag: tagNumber("CryptographicUsageMask"), type: "Integer", value: 12 },
        { tag: tagNumber("CryptographicAlgorithm"), type: "Enumeration", value: 3 },
        { tag: tagNumber("State"), type: "Enumeration", value: 0x80000000 },
      ],
    });
    assert.match(xml, /<CryptographicUsageMask type="Integer" value="Encrypt Decrypt"\/>/);
    assert.match(xml, /<CryptographicAlgorithm type="Enumeration" value="AES"\/>/);
    assert.match(xml, /<State type="Enumeration" value="0x80000000"\/>/);
  });

  it("writes DateTime in UTC", () => {
    const xml = encodeXml({ tag: 0x420001, type: "DateTime", value: 946684800n });
    assert.equal(xml, '<ActivationDate type="DateTime" value="2000-01-01T00:00:00+00:00"/>\n');
  });

  it("escapes attribute text", () => {
    const item: KmipItem = {
      tag: tagNumber("NameValue"),
      type: "TextString",
      value: 'a"<&>\t\r\n',
    };
    assert.ok(itemsEqual(decodeXml(encodeXml(item)), item));
  });
});

describe("XML attribute values in 1.x", () => {
  const xml = `<Attribute>
    <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
    <AttributeValue type="Integer" value="Decrypt Encrypt"/>
  </Attribute>`;

  it("reads value by attribute name", () => {
    const attribute = decodeXml(xml) as StructureItem;
    const value = findChild(attribute, tagNumber("AttributeValue"));
    assert.equal(value?.value, 12);
  });

  it("writes value by attribute name", () => {
    assert.match(
      encodeXml(decodeXml(xml)),
      /<AttributeValue type="Integer" value="Encrypt Decrypt"\/>/,
    );
  });

  it("fail enumeration of other attribute", () => {
    const wrong = xml
      .replace("Cryptographic Usage Mask", "State")
      .replace('type="Integer" value="Decrypt Encrypt"', 'type="Enumeration" value="AES"');
    assert.throws(() => decodeXml(wrong), { resultReason: "InvalidField" });
  });
});

describe("XML placeholders", () => {
  it("keeps placeholders in templates only", () => {
    const xml = '<UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>';
    const [template] = decodeXmlTemplates(xml);
    assert.ok(template !== undefined);
    assert.ok(isPlaceholder(template));
    assert.equal(decodeXml(xml).value, "$UNIQUE_IDENTIFIER_0");
    assert.throws(() => decodeXml('<TimeStamp type="DateTime" value="$NOW"/>'), {
      resultReason: "InvalidField",
    });
  });
});

describe("XML bad input", () => {
  const cases: [string, string, "InvalidMessage" | "InvalidField"][] = [
    ["fail unknown tag", '<NoSuchTag type="Integer" value="1"/>', "InvalidField"],
    ["fail unknown type", '<BatchCount type="Float" value="1"/>', "InvalidField"],
    ["fail missing value", '<BatchCount type="Integer"/>', "InvalidField"],
    [
      "fail Integer out of range",
      '<BatchCount type="Integer" value="2147483648"/>',
      "InvalidField",
    ],
    [
      "fail LongInteger hex overflow",
      '<UsageLimitsTotal type="LongInteger" value="0x10000000000000000"/>',
      "InvalidField",
    ],
    [
      "fail unknown enumeration name",
      '<Operation type="Enumeration" value="Fly"/>',
      "InvalidField",
    ],
    ["fail odd hex bytes", '<Data type="ByteString" value="abc"/>', "InvalidField"],
    [
      "fail bad date",
      '<ActivationDate type="DateTime" value="2000-02-30T00:00:00Z"/>',
      "InvalidField",
    ],
    [
      "fail fractional DateTime",
      '<ActivationDate type="DateTime" value="2000-01-01T00:00:00.5Z"/>',
      "InvalidField",
    ],
    ["fail Boolean yes", '<Sensitive type="Boolean" value="yes"/>', "InvalidField"],
    ["fail value on Structure", '<RequestMessage value="1"/>', "InvalidField"],
    [
      "fail children of scalar",
      '<BatchCount type="Integer" value="1"><BatchCount/></BatchCount>',
      "InvalidField",
    ],
    ["fail unknown attribute", '<BatchCount type="Integer" value="1" extra="x"/>', "InvalidField"],
    ["fail extension tag range", '<TTLV tag="0x430001" type="Integer" value="1"/>', "InvalidField"],
    ["fail text content", "<RequestMessage>text</RequestMessage>", "InvalidMessage"],
    ["fail DOCTYPE", '<!DOCTYPE x [<!ENTITY e "e">]><RequestMessage/>', "InvalidMessage"],
    ["fail CDATA", "<RequestMessage><![CDATA[x]]></RequestMessage>", "InvalidMessage"],
    ["fail unknown entity", '<NameValue type="TextString" value="&e;"/>', "InvalidMessage"],
    ["fail bare ampersand", '<NameValue type="TextString" value="a & b"/>', "InvalidMessage"],
    ["fail mismatched end tag", "<RequestMessage></ResponseMessage>", "InvalidMessage"],
    ["fail unclosed element", "<RequestMessage>", "InvalidMessage"],
    ["fail two roots", "<RequestMessage/><RequestMessage/>", "InvalidMessage"],
    ["fail empty document", "", "InvalidMessage"],
  ];
  for (const [name, xml, reason] of cases) {
    it(name, () => {
      assert.throws(
        () => decodeXml(xml),
        (error: unknown) => error instanceof KmipDecodeError && error.resultReason === reason,
      );
    });
  }

  it("fail nesting beyond maximum depth", () => {
    const xml = `${"<RequestMessage>".repeat(6)}${"</RequestMessage>".repeat(6)}`;
    assert.ok(decodeXml(xml, { maxDepth: 6 }));
    assert.throws(() => decodeXml(xml, { maxDepth: 5 }), { resultReason: "InvalidMessage" });
  });

  it("fail document above maximum length", () => {
    assert.throws(() => decodeXml("<RequestMessage/>", { maxLength: 8 }), {
      resultReason: "InvalidMessage",
    });
  });
});

describe("XML fuzzing", () => {
  it("raises only KmipDecodeError on mutation", () => {
    const random = seededRandom(4242);
    const documents = caseFiles()
      .slice(0, 8)
      .flatMap((file) => bindAll(readFileSync(file.path, "utf8")))
      .map((item) => encodeXml(item));
    const alphabet = '<>/="& #;x0aZ-\n';
    for (let round = 0; round < 5_000; round++) {
      const characters = [...documents[round % documents.length]!];
      for (let edit = 0; edit < 1 + (round % 3); edit++) {
        const position = Math.floor(random() * characters.length);
        characters[position] = alphabet[Math.floor(random() * alphabet.length)]!;
      }
      const cut = round % 5 === 0 ? Math.floor(random() * characters.length) : characters.length;
      try {
        decodeXml(characters.slice(0, cut).join(""));
      } catch (error) {
        if (!isKmipDecodeError(error)) assert.fail(`decodeXml raised ${String(error)}`);
      }
    }
  });
});
