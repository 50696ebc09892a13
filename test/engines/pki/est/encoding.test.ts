import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AttrOrOid,
  CsrAttrs,
  csrAttributesFor,
} from "../../../../src/engines/pki/est/csr-attributes.ts";
import {
  decodeBase64Body,
  encodeBase64Body,
  multipartMixed,
} from "../../../../src/engines/pki/est/encoding.ts";
import { decodeCertsOnly, encodeCertsOnly } from "../../../../src/engines/pki/est/pkcs7.ts";
import { ROLE_DEFAULTS } from "../../../../src/engines/pki/roles.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";

async function selfSigned(commonName: string): Promise<Buffer> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: algorithm,
    notBefore: new Date("2024-01-01T00:00:00Z"),
    notAfter: new Date("2034-01-01T00:00:00Z"),
  });
  return Buffer.from(certificate.rawData);
}

describe("EST certs-only PKCS#7", () => {
  it("round-trips certificates in order", async () => {
    const first = await selfSigned("first");
    const second = await selfSigned("second");
    const decoded = decodeCertsOnly(encodeCertsOnly([first, second]));
    assert.equal(decoded.length, 2);
    assert.ok(decoded[0]!.equals(first));
    assert.ok(decoded[1]!.equals(second));
  });

  it("encodes an empty set", () => {
    assert.deepEqual(decodeCertsOnly(encodeCertsOnly([])), []);
  });

  it("rejects data that is not SignedData", () => {
    assert.throws(() => decodeCertsOnly(Buffer.from("3003020101", "hex")), {
      code: "invalid_certificate",
    });
  });
});

describe("EST body encoding", () => {
  const cases: { name: string; body: string; bytes?: string }[] = [
    { name: "ok single line", body: "AQID", bytes: "010203" },
    { name: "ok CRLF line breaks", body: "AQID\r\nBAUG\r\n", bytes: "010203040506" },
    { name: "ok padding", body: "AQI=", bytes: "0102" },
    { name: "fail empty body", body: "" },
    { name: "fail whitespace only", body: " \r\n" },
    { name: "fail invalid character", body: "AQ*D" },
    { name: "fail base64url alphabet", body: "AQ-_" },
    { name: "fail missing padding", body: "AQI" },
    { name: "fail padding in the middle", body: "AQ==AQID" },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      if (testCase.bytes === undefined) {
        assert.throws(() => decodeBase64Body(testCase.body), { code: "invalid_base64" });
      } else {
        assert.equal(decodeBase64Body(testCase.body).toString("hex"), testCase.bytes);
      }
    });
  }

  it("wraps responses at 64 characters", () => {
    const text = encodeBase64Body(Buffer.alloc(100, 7));
    const lines = text.split("\r\n");
    assert.equal(lines.at(-1), "");
    assert.ok(lines.every((line) => line.length <= 64));
    assert.equal(decodeBase64Body(text).length, 100);
  });

  it("builds multipart with a boundary", () => {
    const { contentType, body } = multipartMixed([
      { contentType: "application/pkcs8", der: Buffer.from([1]) },
      { contentType: "application/pkcs7-mime", der: Buffer.from([2]) },
    ]);
    const boundary = /^multipart\/mixed; boundary=(.+)$/.exec(contentType)?.[1];
    assert.ok(boundary);
    assert.ok(body.endsWith(`--${boundary}--\r\n`));
    assert.equal(body.split(`--${boundary}\r\n`).length, 3);
  });
});

describe("EST CSR attributes", () => {
  it("names the EC curve", () => {
    const der = csrAttributesFor({ ...ROLE_DEFAULTS, key_type: "ec", key_bits: 384 });
    assert.ok(der);
    const attributes = AsnConvert.parse(der, CsrAttrs);
    assert.equal(attributes.length, 2);
    assert.equal(attributes[0]!.attribute?.type, "1.2.840.10045.2.1");
    const curve = AsnConvert.parse(attributes[0]!.attribute!.values[0]!, AttrOrOid);
    assert.equal(curve.oid, "1.3.132.0.34");
    assert.equal(attributes[1]!.oid, "1.2.840.10045.4.3.3");
  });

  it("names RSA for RSA roles", () => {
    const attributes = AsnConvert.parse(csrAttributesFor({ ...ROLE_DEFAULTS })!, CsrAttrs);
    assert.deepEqual(
      [...attributes].map((item) => item.oid),
      ["1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11"],
    );
  });

  it("returns nothing for any key type", () => {
    assert.equal(csrAttributesFor({ ...ROLE_DEFAULTS, key_type: "any" }), undefined);
  });
});
