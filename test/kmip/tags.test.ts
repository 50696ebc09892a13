import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allTags,
  enumeration,
  enumerationForTag,
  maskForTag,
  normalizeName,
  tagByName,
  tagForAttributeName,
  tagInfo,
  tagNumber,
} from "../../src/kmip/tags.ts";

describe("normalizeName", () => {
  const cases: [string, string][] = [
    ["Unique Identifier", "UniqueIdentifier"],
    ["IV/Counter/Nonce", "IVCounterNonce"],
    ["Template-Attribute", "TemplateAttribute"],
    ["Pre-Active", "PreActive"],
    ["SHA-256", "SHA_256"],
    ["HMAC-SHA256", "HMAC_SHA256"],
    ["PKCS#1", "PKCS_1"],
    ["X.509", "X_509"],
    ["ANSI X9.31", "ANSIX9_31"],
    ["PKCS#11 Function", "PKCS_11Function"],
    ["MD2 with RSA Encryption (PKCS#1 v1.5)", "MD2WithRSAEncryptionPKCS_1V1_5"],
    ["3DES", "DES3"],
  ];
  for (const [specName, expected] of cases) {
    it(`ok ${specName}`, () => {
      assert.equal(normalizeName(specName), expected);
    });
  }
});

describe("tag registry", () => {
  it("maps names and numbers both ways", () => {
    assert.equal(tagByName("ActivationDate"), 0x420001);
    assert.equal(tagByName("RequestMessage"), 0x420078);
    assert.equal(tagByName("ResponseMessage"), 0x42007b);
    assert.equal(tagByName("UniqueIdentifier"), 0x420094);
    assert.equal(tagInfo(0x42000a)?.name, "AttributeName");
  });

  it("gives every tag a distinct name", () => {
    const names = allTags().map((info) => info.name);
    assert.equal(new Set(names).size, names.length);
  });

  it("keeps 1.x tags removed in 2.0", () => {
    const templateAttribute = tagInfo(tagNumber("TemplateAttribute"));
    assert.equal(templateAttribute?.tag, 0x420091);
    assert.equal(templateAttribute?.removedIn2, true);
    assert.equal(tagInfo(tagNumber("Attributes"))?.removedIn2, false);
  });

  it("rejects unknown names as programming errors", () => {
    assert.throws(() => tagNumber("NoSuchTag"), { code: "internal" });
  });
});

describe("enumerations", () => {
  const cases: [string, string, number][] = [
    ["Operation", "Create", 0x01],
    ["Operation", "Get", 0x0a],
    ["Operation", "RNGRetrieve", 0x25],
    ["ObjectType", "SymmetricKey", 0x02],
    ["ObjectType", "Template", 0x06],
    ["ResultStatus", "Success", 0x00],
    ["ResultStatus", "OperationFailed", 0x01],
    ["ResultReason", "InvalidMessage", 0x04],
    ["ResultReason", "InvalidField", 0x07],
    ["CryptographicAlgorithm", "AES", 0x03],
    ["CryptographicAlgorithm", "RSA", 0x04],
    ["KeyFormatType", "Raw", 0x01],
    ["KeyFormatType", "TransparentSymmetricKey", 0x07],
    ["BlockCipherMode", "CBC", 0x01],
    ["BlockCipherMode", "GCM", 0x09],
    ["PaddingMethod", "PKCS5", 0x03],
    ["HashingAlgorithm", "SHA_256", 0x06],
    ["NameType", "UninterpretedTextString", 0x01],
    ["State", "PreActive", 0x01],
    ["State", "Active", 0x02],
    ["RevocationReasonCode", "KeyCompromise", 0x02],
    ["MaskGenerator", "MGF1", 0x01],
    ["PKCS_11Function", "C_Initialize", 0x01],
    ["PKCS_11ReturnCode", "OK", 0x00],
  ];
  for (const [name, valueName, value] of cases) {
    it(`ok ${name} ${valueName}`, () => {
      assert.equal(enumeration(name)?.byName.get(valueName), value);
    });
  }

  it("finds the enumeration of a tag", () => {
    assert.equal(enumerationForTag(tagNumber("Operation"))?.name, "Operation");
    assert.equal(
      enumerationForTag(tagNumber("MaskGeneratorHashingAlgorithm"))?.name,
      "HashingAlgorithm",
    );
    assert.equal(
      enumerationForTag(tagNumber("AttributeReference"))?.byName.get("ActivationDate"),
      0x420001,
    );
  });

  it("finds masks by tag", () => {
    const usage = maskForTag(tagNumber("CryptographicUsageMask"));
    assert.equal(usage?.byName.get("Encrypt"), 0x04);
    assert.equal(usage?.byName.get("Decrypt"), 0x08);
    assert.equal(maskForTag(tagNumber("ProtectionStorageMask"))?.byName.get("Software"), 0x01);
  });

  it("reads 1.x attribute names as tags", () => {
    assert.equal(
      tagForAttributeName("Cryptographic Algorithm"),
      tagNumber("CryptographicAlgorithm"),
    );
    assert.equal(tagForAttributeName("x-custom"), undefined);
  });
});
