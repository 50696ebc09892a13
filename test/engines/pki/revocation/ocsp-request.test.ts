import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { CertID } from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import {
  certIdMatchesIssuer,
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_REQUEST_BYTES,
  parseOcspRequest,
} from "../../../../src/engines/pki/revocation/ocsp.ts";
import { KeywardError } from "../../../../src/errors.ts";
import { certId, encodeRequest, MD5, makeCa, NULL_PARAMETERS, SHA256 } from "./fixtures.ts";

function assertInvalidRequest(input: Uint8Array, message: RegExp): void {
  assert.throws(
    () => parseOcspRequest(input),
    (error: unknown) => {
      assert.ok(error instanceof KeywardError, `expected KeywardError, got ${String(error)}`);
      assert.equal(error.code, "invalid_request");
      assert.match(error.message, message);
      return true;
    },
  );
}

describe("parseOcspRequest", () => {
  const valid = encodeRequest([certId()]);

  const badInput: { name: string; input: Uint8Array; message: RegExp }[] = [
    { name: "fail empty buffer", input: new Uint8Array(0), message: /empty/ },
    { name: "fail random bytes", input: new Uint8Array(randomBytes(64)), message: /DER|trailing/ },
    { name: "fail truncated DER", input: valid.subarray(0, valid.length - 5), message: /DER/ },
    {
      name: "fail trailing bytes",
      input: Buffer.concat([valid, Buffer.of(0)]),
      message: /trailing/,
    },
    { name: "fail zero CertIDs", input: encodeRequest([]), message: /no CertID/ },
    {
      name: "fail MD5 CertID",
      input: encodeRequest([certId({ hashOid: MD5, hashLength: 16 })]),
      message: /CertID 1 uses unsupported hash algorithm 1\.2\.840\.113549\.2\.5/,
    },
    {
      name: "fail SHA-256 CertID with SHA-1 lengths",
      input: encodeRequest([certId({ hashOid: SHA256, hashLength: 20 })]),
      message: /CertID 1 has issuer hashes of the wrong length/,
    },
    {
      name: "fail negative serial",
      input: encodeRequest([certId(), certId({ serial: [0x80, 0x01] })]),
      message: /CertID 2 has a negative serial/,
    },
    {
      name: "fail oversized request",
      input: new Uint8Array(MAX_OCSP_REQUEST_BYTES + 1),
      message: /more than the 16384-byte limit/,
    },
    {
      name: "fail too many CertIDs",
      input: encodeRequest(Array.from({ length: MAX_OCSP_CERT_IDS + 1 }, () => certId())),
      message: /more than the limit of 64/,
    },
    {
      name: "fail empty nonce",
      input: encodeRequest([certId()], [new Uint8Array(0)]),
      message: /nonce is empty/,
    },
    {
      name: "fail overlong nonce",
      input: encodeRequest([certId()], [new Uint8Array(129)]),
      message: /nonce is longer than 128 bytes/,
    },
    {
      name: "fail repeated nonce",
      input: encodeRequest([certId()], [new Uint8Array([1]), new Uint8Array([2])]),
      message: /repeats the nonce/,
    },
  ];
  for (const { name, input, message } of badInput) {
    it(name, () => assertInvalidRequest(input, message));
  }

  it("ok SHA-1 CertID without nonce", () => {
    const info = parseOcspRequest(valid);
    assert.equal(info.certIds.length, 1);
    const [id] = info.certIds;
    assert.equal(id?.hashAlgorithm, "sha1");
    assert.equal(id?.serialHex, "0123");
    assert.deepEqual(id?.issuerNameHash, new Uint8Array(20).fill(1));
    assert.deepEqual(id?.issuerKeyHash, new Uint8Array(20).fill(2));
    assert.equal(info.nonce, undefined);
  });

  it("ok SHA-256 CertIDs with nonce", () => {
    const nonce = new Uint8Array([0x04, 0x03, 0xaa, 0xbb, 0xcc]);
    const info = parseOcspRequest(
      encodeRequest(
        [certId({ hashOid: SHA256, hashLength: 32 }), certId({ serial: [0x00, 0xff] })],
        [nonce],
      ),
    );
    assert.deepEqual(
      info.certIds.map((id) => [id.hashAlgorithm, id.serialHex]),
      [
        ["sha256", "0123"],
        ["sha1", "ff"],
      ],
    );
    assert.deepEqual(info.nonce, nonce);
  });

  it("ok CertID DER round trip", () => {
    const original = certId({ serial: [0x7f, 0x01, 0x02] });
    const [id] = parseOcspRequest(encodeRequest([original])).certIds;
    assert.deepEqual(id?.der, new Uint8Array(AsnConvert.serialize(original)));
  });

  it("reads a view into a larger buffer", () => {
    const padded = Buffer.concat([Buffer.alloc(7, 0xee), valid, Buffer.alloc(5, 0xee)]);
    const view = padded.subarray(7, 7 + valid.length);
    assert.equal(parseOcspRequest(view).certIds[0]?.serialHex, "0123");
  });

  it("rejects every truncation cleanly", () => {
    const request = encodeRequest(
      [certId(), certId({ hashOid: SHA256, hashLength: 32 })],
      [new Uint8Array(18)],
    );
    for (let length = 1; length < request.length; length++) {
      assertInvalidRequest(request.subarray(0, length), /./);
    }
  });

  it("rejects random input cleanly", () => {
    for (let i = 0; i < 300; i++) {
      const input = new Uint8Array(randomBytes(1 + (i % 200)));
      // Start some inputs with a SEQUENCE tag so the parser goes deeper.
      if (i % 2 === 0) input[0] = 0x30;
      assertInvalidRequest(input, /./);
    }
  });
});

describe("certIdMatchesIssuer", () => {
  it("matches only the named issuer", async () => {
    const ca = await makeCa("ecdsa-p256");
    const other = await makeCa("ecdsa-p256");
    const subject = new Uint8Array(ca.certificate.subjectName.toArrayBuffer());
    const spki = (await crypto.subtle.exportKey("raw", ca.publicKey)) as ArrayBuffer;
    const id = new CertID({
      hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA256, parameters: NULL_PARAMETERS }),
      issuerNameHash: new OctetString(createHash("sha256").update(subject).digest()),
      issuerKeyHash: new OctetString(createHash("sha256").update(Buffer.from(spki)).digest()),
      serialNumber: new Uint8Array([1]).buffer,
    });
    const [parsed] = parseOcspRequest(encodeRequest([id])).certIds;
    assert.ok(parsed);
    assert.equal(certIdMatchesIssuer(parsed, ca.certificate), true);
    assert.equal(certIdMatchesIssuer(parsed, other.certificate), false);
  });
});
