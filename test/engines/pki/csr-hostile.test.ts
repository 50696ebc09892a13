import assert from "node:assert/strict";
import { constants, createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import {
  bitString,
  buildCsr,
  csrPem,
  derNull,
  OIDS,
  oid,
  pkcs1Sha256Encoding,
  rsaSpki,
  sequence,
  spkiOf,
  tlv,
  unsignedInteger,
} from "./csr-builder.ts";
import { createPkiApp, ok } from "./fixtures.ts";

// Hostile CSRs sent to POST /v1/pki/sign/:role. Each one must get a 400
// with a stable code naming "csr", and the valid ones must pass. The point
// at infinity is left to csr-server.test.ts because it aborts the process.

const ECDSA_SHA256 = sequence(oid(OIDS.ecdsaSha256));
const RSA_SHA256 = sequence(oid(OIDS.sha256WithRsa), derNull());
const ED25519 = sequence(oid(OIDS.ed25519));

interface Case {
  name: string;
  csr: () => Buffer;
  /** The expected error code, or undefined when the CSR must be signed. */
  code?: string;
}

function ecSpkiWithPoint(point: Uint8Array): Buffer {
  return sequence(sequence(oid(OIDS.ecPublicKey), oid(OIDS.p256)), bitString(point));
}

function pssAlgorithm(salt: Buffer): Buffer {
  const sha256 = sequence(oid(OIDS.sha256), derNull());
  return sequence(
    oid(OIDS.rsaPss),
    sequence(
      tlv(0xa0, sha256),
      tlv(0xa1, sequence(oid(OIDS.mgf1), sha256)),
      tlv(0xa2, tlv(0x02, salt)),
    ),
  );
}

function signedBy(privateKey: KeyObject) {
  return (info: Buffer) => sign("sha256", info, privateKey);
}

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ed = generateKeyPairSync("ed25519");
const ecPoint = spkiOf(ec.publicKey).subarray(-65);
const rsaJwk = rsa.publicKey.export({ format: "jwk" });
const modulus = Buffer.from(rsaJwk.n!, "base64url");
const exponent = unsignedInteger(Buffer.from(rsaJwk.e!, "base64url"));
const offCurvePoint = Buffer.from(ecPoint);
offCurvePoint[64] = offCurvePoint[64]! ^ 0x01;
/** An arbitrary 2048-bit modulus. With e=1 the signature is the encoded message itself, so no private key exists. */
const arbitraryModulus = Buffer.concat([Buffer.from([0xc0]), Buffer.alloc(255, 0x5a)]);

const cases: Case[] = [
  {
    name: "valid ECDSA P-256",
    csr: () =>
      buildCsr({
        spki: spkiOf(ec.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(ec.privateKey),
      }),
  },
  {
    name: "valid RSA PKCS#1 v1.5",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "valid RSASSA-PSS salt 32",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: pssAlgorithm(Buffer.from([32])),
        sign: (info) =>
          sign("sha256", info, {
            key: rsa.privateKey,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: 32,
          }),
      }),
  },
  {
    name: "valid Ed25519",
    csr: () =>
      buildCsr({
        spki: spkiOf(ed.publicKey),
        signatureAlgorithm: ED25519,
        sign: (info) => sign(null, info, ed.privateKey),
      }),
  },
  {
    name: "RSASSA-PSS salt length 2^39",
    code: "invalid_csr_signature",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: pssAlgorithm(Buffer.from("7fffffffff", "hex")),
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "RSASSA-PSS without parameters",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: sequence(oid(OIDS.rsaPss)),
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "RSA 1024 bits",
    code: "unsupported_key_type",
    csr: () => {
      const small = generateKeyPairSync("rsa", { modulusLength: 1024 });
      return buildCsr({
        spki: spkiOf(small.publicKey),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(small.privateKey),
      });
    },
  },
  {
    name: "RSA exponent 1",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: rsaSpki(unsignedInteger(arbitraryModulus), unsignedInteger(Buffer.from([1]))),
        signatureAlgorithm: RSA_SHA256,
        sign: (info) => pkcs1Sha256Encoding(createHash("sha256").update(info).digest(), 256),
      }),
  },
  {
    name: "RSA exponent 2",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: rsaSpki(unsignedInteger(arbitraryModulus), unsignedInteger(Buffer.from([2]))),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "RSA negative modulus",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: rsaSpki(tlv(0x02, modulus), exponent),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "RSA key with trailing bytes",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: sequence(
          sequence(oid(OIDS.rsaEncryption), derNull()),
          bitString(
            Buffer.concat([
              sequence(unsignedInteger(modulus), exponent),
              Buffer.from([0xde, 0xad]),
            ]),
          ),
        ),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "RSA key with OID parameters",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: rsaSpki(unsignedInteger(modulus), exponent, oid("1.2.3.4")),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "EC compressed point",
    csr: () =>
      buildCsr({
        spki: ecSpkiWithPoint(
          Buffer.concat([Buffer.from([2 + (ecPoint[64]! & 1)]), ecPoint.subarray(1, 33)]),
        ),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(ec.privateKey),
      }),
  },
  {
    name: "EC hybrid point",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: ecSpkiWithPoint(
          Buffer.concat([Buffer.from([6 + (ecPoint[64]! & 1)]), ecPoint.subarray(1)]),
        ),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(ec.privateKey),
      }),
  },
  {
    name: "EC explicit curve parameters",
    code: "unsupported_key_type",
    csr: () => {
      const explicit = generateKeyPairSync("ec", {
        namedCurve: "P-256",
        paramEncoding: "explicit",
        publicKeyEncoding: { type: "spki", format: "der" },
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
      });
      return buildCsr({
        spki: explicit.publicKey,
        signatureAlgorithm: ECDSA_SHA256,
        sign: (info) => sign("sha256", info, explicit.privateKey),
      });
    },
  },
  {
    name: "EC point off its curve",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: ecSpkiWithPoint(offCurvePoint),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(ec.privateKey),
      }),
  },
  {
    name: "EC off curve with RSA signature",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: ecSpkiWithPoint(offCurvePoint),
        signatureAlgorithm: RSA_SHA256,
        sign: signedBy(ec.privateKey),
      }),
  },
  ...(["P-521", "secp256k1"] as const).map((curve) => ({
    name: `EC ${curve}`,
    code: "unsupported_key_type",
    csr: () => {
      const keys = generateKeyPairSync("ec", { namedCurve: curve });
      return buildCsr({
        spki: spkiOf(keys.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(keys.privateKey),
      });
    },
  })),
  {
    name: "Ed448 key",
    code: "unsupported_key_type",
    csr: () => {
      const keys = generateKeyPairSync("ed448");
      return buildCsr({
        spki: spkiOf(keys.publicKey),
        signatureAlgorithm: ED25519,
        sign: (info) => sign(null, info, keys.privateKey),
      });
    },
  },
  {
    name: "X25519 key",
    code: "unsupported_key_type",
    csr: () =>
      buildCsr({
        spki: spkiOf(generateKeyPairSync("x25519").publicKey),
        signatureAlgorithm: ED25519,
        sign: () => Buffer.alloc(64, 1),
      }),
  },
  {
    name: "DSA key",
    code: "unsupported_key_type",
    csr: () => {
      const keys = generateKeyPairSync("dsa", { modulusLength: 2048, divisorLength: 256 });
      return buildCsr({
        spki: spkiOf(keys.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: () => Buffer.alloc(64, 1),
      });
    },
  },
  {
    name: "Ed25519 identity point key",
    code: "unsupported_key_type",
    // The identity point with R = identity and S = 0 verifies for every
    // message, so this CSR proves possession of no private key.
    csr: () =>
      buildCsr({
        spki: sequence(
          sequence(oid(OIDS.ed25519)),
          bitString(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])),
        ),
        signatureAlgorithm: ED25519,
        sign: () => Buffer.concat([Buffer.from([1]), Buffer.alloc(63)]),
      }),
  },
  {
    name: "RSA key with ECDSA signature",
    code: "invalid_csr_signature",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(rsa.privateKey),
      }),
  },
  {
    name: "truncated ECDSA signature",
    code: "invalid_csr_signature",
    csr: () =>
      buildCsr({
        spki: spkiOf(ec.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: (info) => signedBy(ec.privateKey)(info).subarray(0, 20),
      }),
  },
  {
    name: "overlong RSA signature",
    code: "invalid_csr_signature",
    csr: () =>
      buildCsr({
        spki: spkiOf(rsa.publicKey),
        signatureAlgorithm: RSA_SHA256,
        sign: (info) => Buffer.concat([Buffer.alloc(1), signedBy(rsa.privateKey)(info)]),
      }),
  },
  {
    name: "element after the signature",
    code: "invalid_certificate",
    csr: () =>
      buildCsr({
        spki: spkiOf(ec.publicKey),
        signatureAlgorithm: ECDSA_SHA256,
        sign: signedBy(ec.privateKey),
        extraInside: derNull(),
      }),
  },
  {
    name: "bytes after the CSR",
    code: "invalid_certificate",
    csr: () =>
      Buffer.concat([
        buildCsr({
          spki: spkiOf(ec.publicKey),
          signatureAlgorithm: ECDSA_SHA256,
          sign: signedBy(ec.privateKey),
        }),
        Buffer.from([0, 0]),
      ]),
  },
];

describe("hostile CSRs on sign", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Hostile CSR Root",
      key_type: "ec",
      ttl: "8760h",
    });
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "any",
      max_ttl: "72h",
    });
  });
  after(() => t.close());

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const response = await t.request({
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: csrPem(testCase.csr()), common_name: "hostile.example.test", ttl: "1h" },
      });
      if (testCase.code === undefined) {
        assert.equal(response.statusCode, 200, response.body);
        return;
      }
      const outcome = response.statusCode === 200 ? "a certificate was signed" : response.body;
      assert.equal(response.statusCode, 400, outcome);
      assert.equal(response.json().code, testCase.code, response.body);
      assert.equal(response.json().field, "csr", response.body);
    });
  }
});

describe("hostile CSR subject on sign-verbatim", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Verbatim Root",
      key_type: "ec",
      ttl: "8760h",
    });
  });
  after(() => t.close());

  it("RDN as SEQUENCE gets 400", async () => {
    // A Name whose RelativeDistinguishedName is a SEQUENCE, not a SET.
    const subject = sequence(sequence(sequence(tlv(0x0c, Buffer.from("x")))));
    const info = sequence(tlv(0x02, Buffer.from([0])), subject, spkiOf(ec.publicKey), tlv(0xa0));
    const der = sequence(info, ECDSA_SHA256, bitString(sign("sha256", info, ec.privateKey)));
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/sign-verbatim",
      payload: { csr: csrPem(der), ttl: "1h" },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(response.json().field, "csr");
  });
});
