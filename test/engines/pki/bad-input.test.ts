import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { toPem } from "../../../src/engines/pki/pem.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok } from "./fixtures.ts";

/** Makes a CSR with WebCrypto: the given key algorithm and signature hash. */
async function makeCsr(
  algorithm: RsaHashedKeyGenParams | EcKeyGenParams,
  commonName: string,
): Promise<string> {
  const keys = (await crypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: algorithm,
  });
  return csr.toString("pem");
}

type RsaHashedKeyGenParams = {
  name: string;
  modulusLength: number;
  publicExponent: Uint8Array;
  hash: string;
};
type EcKeyGenParams = { name: string; namedCurve: string; hash?: string };
type CryptoKeyPair = { privateKey: never; publicKey: never };

interface Case {
  name: string;
  method: "GET" | "POST";
  url: string;
  payload?: object;
  status: number;
  code: string;
  field?: string;
}

describe("PKI bad input", () => {
  let t: TestApp;
  const cases: Case[] = [];

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Bad Input Root",
      key_type: "ec",
      ttl: "8760h",
    });
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      allow_ip_sans: false,
      key_type: "any",
      max_ttl: "72h",
    });
    const good = await makeCsr(
      { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" },
      "ok.example.test",
    );
    const der = Buffer.from(good.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
    const tampered = Buffer.from(der);
    // Flip a bit inside the signature, the last field of the CSR.
    tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x01;
    // Change the last byte of the public key's y coordinate: the point
    // leaves the curve (the signature no longer matters).
    const offCurve = Buffer.from(der);
    const point = offCurve.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04]));
    assert.ok(point > 0);
    offCurve[point + 3 + 64] = offCurve[point + 3 + 64]! ^ 0x01;
    const sha1 = await makeCsr(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-1",
      },
      "sha1.example.test",
    );
    const p521 = await makeCsr(
      { name: "ECDSA", namedCurve: "P-521", hash: "SHA-512" },
      "p521.example.test",
    );
    const issued = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "holder.example.test" });

    cases.push(
      {
        name: "fail malformed PEM",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: {
          csr: "-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----",
        },
        status: 400,
        code: "invalid_certificate",
        field: "csr",
      },
      {
        name: "fail malformed DER",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: toPem(Buffer.from("garbage"), "CERTIFICATE REQUEST") },
        status: 400,
        code: "invalid_certificate",
        field: "csr",
      },
      {
        name: "fail CSR bad signature",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: toPem(tampered, "CERTIFICATE REQUEST") },
        status: 400,
        code: "invalid_csr_signature",
        field: "csr",
      },
      {
        name: "fail CSR key off its curve",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: toPem(offCurve, "CERTIFICATE REQUEST") },
        status: 400,
        code: "unsupported_key_type",
        field: "csr",
      },
      {
        name: "fail CSR SHA-1 signature",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: sha1 },
        status: 400,
        code: "unsupported_key_type",
        field: "csr",
      },
      {
        name: "fail CSR P-521 key",
        method: "POST",
        url: "/v1/pki/sign/web",
        payload: { csr: p521 },
        status: 400,
        code: "unsupported_key_type",
        field: "csr",
      },
      {
        name: "fail name outside role",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "www.evil.test" },
        status: 400,
        code: "name_not_allowed",
        field: "common_name",
      },
      {
        name: "fail alt name outside role",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", alt_names: "b.evil.test" },
        status: 400,
        code: "name_not_allowed",
        field: "alt_names",
      },
      {
        name: "fail IP SAN not allowed",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", ip_sans: "10.0.0.1" },
        status: 400,
        code: "name_not_allowed",
        field: "ip_sans",
      },
      {
        name: "fail invalid hostname",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "bad_name.example.test" },
        status: 400,
        code: "invalid_field",
        field: "common_name",
      },
      {
        name: "fail URI SAN not allowed",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", uri_sans: "spiffe://x/y" },
        status: 400,
        code: "name_not_allowed",
        field: "uri_sans",
      },
      {
        name: "fail TTL beyond max",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", ttl: "100h" },
        status: 400,
        code: "ttl_too_long",
        field: "ttl",
      },
      {
        name: "fail not_after beyond max",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", not_after: "2099-01-01T00:00:00Z" },
        status: 400,
        code: "ttl_too_long",
        field: "not_after",
      },
      {
        name: "fail not_after in past",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", not_after: "2001-01-01T00:00:00Z" },
        status: 400,
        code: "invalid_field",
        field: "not_after",
      },
      {
        name: "fail TTL not a duration",
        method: "POST",
        url: "/v1/pki/issue/web",
        payload: { common_name: "a.example.test", ttl: "soon" },
        status: 400,
        code: "invalid_field",
        field: "ttl",
      },
      {
        name: "fail serial not hex",
        method: "GET",
        url: "/v1/pki/cert/zz:zz",
        status: 400,
        code: "invalid_field",
        field: "serial",
      },
      {
        name: "fail serial bad grouping",
        method: "POST",
        url: "/v1/pki/revoke",
        payload: { serial_number: "12:345:67" },
        status: 400,
        code: "invalid_field",
        field: "serial_number",
      },
      {
        name: "fail serial too long",
        method: "POST",
        url: "/v1/pki/revoke",
        payload: { serial_number: "ab".repeat(30) },
        status: 400,
        code: "invalid_field",
        field: "serial_number",
      },
      {
        name: "fail serial and certificate both",
        method: "POST",
        url: "/v1/pki/revoke",
        payload: { serial_number: "01:02:03", certificate: "not read" },
        status: 400,
        code: "invalid_field",
        field: "certificate",
      },
      {
        name: "fail serial unknown",
        method: "POST",
        url: "/v1/pki/revoke",
        payload: { serial_number: "01:02:03" },
        status: 404,
        code: "not_found",
        field: "serial_number",
      },
      {
        name: "fail bundle without PEM",
        method: "POST",
        url: "/v1/pki/config/ca",
        payload: { pem_bundle: "not pem at all" },
        status: 400,
        code: "invalid_certificate",
        field: "pem_bundle",
      },
      {
        name: "fail bundle bad DER",
        method: "POST",
        url: "/v1/pki/config/ca",
        payload: { pem_bundle: toPem(Buffer.from("xx"), "CERTIFICATE") },
        status: 400,
        code: "invalid_certificate",
        field: "pem_bundle",
      },
      {
        name: "fail bundle leaf certificate",
        method: "POST",
        url: "/v1/pki/config/ca",
        payload: { pem_bundle: issued.certificate },
        status: 400,
        code: "invalid_certificate",
        field: "pem_bundle",
      },
      {
        name: "fail revoke bad key",
        method: "POST",
        url: "/v1/pki/revoke-with-key",
        payload: {
          certificate: issued.certificate,
          private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        },
        status: 400,
        code: "invalid_certificate",
        field: "private_key",
      },
      {
        name: "fail role unknown EKU",
        method: "POST",
        url: "/v1/pki/roles/r",
        payload: { ext_key_usage: "Teleport" },
        status: 400,
        code: "invalid_field",
        field: "ext_key_usage",
      },
      {
        name: "fail role bad OID",
        method: "POST",
        url: "/v1/pki/roles/r",
        payload: { ext_key_usage_oids: "1.2.x" },
        status: 400,
        code: "invalid_field",
        field: "ext_key_usage_oids",
      },
      {
        name: "fail role key bits",
        method: "POST",
        url: "/v1/pki/roles/r",
        payload: { key_type: "ec", key_bits: 521 },
        status: 400,
        code: "invalid_field",
        field: "key_bits",
      },
      {
        name: "fail root bad type",
        method: "POST",
        url: "/v1/pki/root/generate/kms",
        payload: { common_name: "x" },
        status: 400,
        code: "invalid_field",
        field: "type",
      },
      {
        name: "fail root without CN",
        method: "POST",
        url: "/v1/pki/root/generate/internal",
        payload: {},
        status: 400,
        code: "missing_field",
        field: "common_name",
      },
      {
        name: "fail unknown issuer",
        method: "POST",
        url: "/v1/pki/issuer/nope/issue/web",
        payload: { common_name: "a.example.test" },
        status: 404,
        code: "not_found",
        field: "issuer_ref",
      },
      {
        name: "fail unknown role",
        method: "POST",
        url: "/v1/pki/issue/nope",
        payload: { common_name: "a.example.test" },
        status: 404,
        code: "not_found",
        field: "role",
      },
    );
  });
  after(() => t.close());

  it("answers each case with its code", async () => {
    assert.ok(cases.length > 20);
    for (const testCase of cases) {
      const response = await t.request({
        method: testCase.method,
        url: testCase.url,
        ...(testCase.payload ? { payload: testCase.payload } : {}),
      });
      assert.equal(response.statusCode, testCase.status, `${testCase.name}: ${response.body}`);
      const body = response.json();
      assert.equal(body.code, testCase.code, `${testCase.name}: ${response.body}`);
      if (testCase.field) {
        assert.equal(body.field, testCase.field, `${testCase.name}: ${response.body}`);
        assert.ok(
          body.errors[0].includes(testCase.field) || testCase.code === "not_found",
          `${testCase.name}: message names the field: ${body.errors[0]}`,
        );
      }
    }
  });
});
