import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { CertID, OCSPResponse, OCSPResponseStatus } from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok } from "./fixtures.ts";
import { encodeRequest, NULL_PARAMETERS, SHA1 } from "./revocation/fixtures.ts";

describe("OCSP responder with long serials", () => {
  let t: TestApp;
  let issuerNameHash: Buffer;
  let issuerKeyHash: Buffer;

  before(async () => {
    t = await createPkiApp();
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "OCSP Serial Root",
      key_type: "ec",
      ttl: "87600h",
    });
    const certificate = new x509.X509Certificate(root.certificate as string);
    const spki = AsnConvert.parse(certificate.publicKey.rawData, SubjectPublicKeyInfo);
    issuerNameHash = createHash("sha1")
      .update(new Uint8Array(certificate.subjectName.toArrayBuffer()))
      .digest();
    issuerKeyHash = createHash("sha1").update(new Uint8Array(spki.subjectPublicKey)).digest();
  });

  after(async () => {
    await t?.close();
  });

  /** Builds a DER OCSP request for this mount's issuer and a serial of `length` bytes. */
  function requestWithSerial(length: number): Uint8Array {
    const serial = Buffer.concat([Buffer.of(0x01), randomBytes(length - 1)]);
    const certId = new CertID({
      hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA1, parameters: NULL_PARAMETERS }),
      issuerNameHash: new OctetString(issuerNameHash),
      issuerKeyHash: new OctetString(issuerKeyHash),
      serialNumber: new Uint8Array(serial).buffer,
    });
    return encodeRequest([certId]);
  }

  function assertOcspAnswer(response: { statusCode: number; body: string; rawPayload: Buffer }) {
    // A request under the 16384-byte limit gets an OCSP response: "unknown"
    // for a serial this mount never issued, or malformedRequest.
    assert.equal(response.statusCode, 200, response.body);
    assert.doesNotMatch(response.body, /storage key/);
    const parsed = AsnConvert.parse(response.rawPayload, OCSPResponse);
    assert.ok(
      parsed.responseStatus === OCSPResponseStatus.successful ||
        parsed.responseStatus === OCSPResponseStatus.malformedRequest,
      `unexpected OCSP response status ${parsed.responseStatus}`,
    );
  }

  for (const length of [600, 4000]) {
    it(`POST answers ${length}-byte serial`, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/pki/ocsp",
        token: null,
        headers: { "content-type": "application/ocsp-request" },
        payload: Buffer.from(requestWithSerial(length)),
      });
      assertOcspAnswer(response);
    });
  }

  it("GET answers 600-byte serial", async () => {
    const encoded = encodeURIComponent(Buffer.from(requestWithSerial(600)).toString("base64"));
    const response = await t.request({
      method: "GET",
      url: `/v1/pki/ocsp/${encoded}`,
      token: null,
    });
    assertOcspAnswer(response);
  });
});
