import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeCertsOnly } from "../../../../src/engines/pki/est/pkcs7.ts";
import { toPem } from "../../../../src/engines/pki/pem.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import {
  basic,
  createEstApp,
  createSecret,
  type EstTlsServer,
  makeCsr,
  PKCS10,
  privateKeyPem,
  startTlsServer,
  tlsRequest,
} from "./fixtures.ts";

interface Enrolled {
  certificate: x509.X509Certificate;
  clientCertificate: { certPem: string; keyPem: string };
}

function certificateOf(body: string): x509.X509Certificate {
  const [der] = decodeCertsOnly(Buffer.from(body, "base64"));
  assert.ok(der, "the response contains a certificate");
  return new x509.X509Certificate(der);
}

describe("EST re-enrolment over TLS", () => {
  let t: TestApp;
  let server: EstTlsServer;

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false });
    server = await startTlsServer(t);
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  /** Enrols `subject` with an enrolment secret over TLS and returns the certificate and its key. */
  async function enrol(deviceId: string, subject: string, dnsNames: string[] = []) {
    const secret = await createSecret(t, deviceId);
    const csr = await makeCsr(subject, dnsNames);
    const response = await tlsRequest(server, {
      method: "POST",
      path: "/.well-known/est/simpleenroll",
      headers: { ...PKCS10, authorization: basic(deviceId, secret) },
      body: csr.base64,
    });
    assert.equal(response.status, 200, response.body);
    const certificate = certificateOf(response.body);
    return {
      certificate,
      clientCertificate: {
        certPem: toPem(certificate.rawData, "CERTIFICATE"),
        keyPem: await privateKeyPem(csr.keys),
      },
    } satisfies Enrolled;
  }

  async function reenrol(
    enrolled: Enrolled | undefined,
    csrBase64: string,
    path = "simplereenroll",
  ) {
    return tlsRequest(server, {
      method: "POST",
      path: `/.well-known/est/${path}`,
      headers: PKCS10,
      body: csrBase64,
      ...(enrolled ? { clientCertificate: enrolled.clientCertificate } : {}),
    });
  }

  it("ok renews with the same names", async () => {
    const enrolled = await enrol("renew-1", "CN=r1.devices.example.com", ["x.devices.example.com"]);
    const csr = await makeCsr("CN=r1.devices.example.com", ["x.devices.example.com"]);
    const response = await reenrol(enrolled, csr.base64);
    assert.equal(response.status, 200, response.body);
    const renewed = certificateOf(response.body);
    assert.equal(renewed.subject, enrolled.certificate.subject);
    assert.notEqual(renewed.serialNumber, enrolled.certificate.serialNumber);
  });

  it("ok renews with the renewed certificate", async () => {
    const enrolled = await enrol("renew-2", "CN=r2.devices.example.com");
    const csr = await makeCsr("CN=r2.devices.example.com");
    const first = await reenrol(enrolled, csr.base64);
    assert.equal(first.status, 200, first.body);
    const renewed = certificateOf(first.body);
    const again = await reenrol(
      {
        certificate: renewed,
        clientCertificate: {
          certPem: toPem(renewed.rawData, "CERTIFICATE"),
          keyPem: await privateKeyPem(csr.keys),
        },
      },
      (await makeCsr("CN=r2.devices.example.com")).base64,
    );
    assert.equal(again.status, 200, again.body);
  });

  it("ok serverkeygen with a client certificate", async () => {
    const enrolled = await enrol("keygen-cert", "CN=kc.devices.example.com");
    const csr = await makeCsr("CN=kc.devices.example.com");
    const response = await reenrol(enrolled, csr.base64, "serverkeygen");
    assert.equal(response.status, 200, response.body);
    assert.match(String(response.headers["content-type"]), /^multipart\/mixed; boundary=/);
  });

  const failures: {
    name: string;
    subject: string;
    dnsNames?: string[];
    status: number;
    message: RegExp;
  }[] = [
    {
      name: "fail mismatched subject",
      subject: "CN=other.devices.example.com",
      status: 400,
      message: /subject .* differs/,
    },
    {
      name: "fail extra SAN",
      subject: "CN=m.devices.example.com",
      dnsNames: ["extra.devices.example.com"],
      status: 400,
      message: /extra: dns:extra.devices.example.com/,
    },
  ];
  for (const testCase of failures) {
    it(testCase.name, async () => {
      const enrolled = await enrol(
        `mismatch-${testCase.name}`.replace(/ /g, "-"),
        "CN=m.devices.example.com",
      );
      const before = (await t.keyward.pki("pki")!.inventory.serials()).length;
      const csr = await makeCsr(testCase.subject, testCase.dnsNames);
      const response = await reenrol(enrolled, csr.base64);
      assert.equal(response.status, testCase.status, response.body);
      assert.match(response.body, testCase.message);
      assert.equal((await t.keyward.pki("pki")!.inventory.serials()).length, before);
    });
  }

  it("fail revoked client certificate", async () => {
    const enrolled = await enrol("revoked", "CN=rv.devices.example.com");
    await ok(t, "POST", "/v1/pki/revoke", { serial_number: enrolled.certificate.serialNumber });
    const response = await reenrol(enrolled, (await makeCsr("CN=rv.devices.example.com")).base64);
    assert.equal(response.status, 403, response.body);
    assert.match(response.body, /revoked/);
  });

  it("fail certificate from another CA", async () => {
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({
      name: "CN=foreign.devices.example.com",
      keys,
      signingAlgorithm: algorithm,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
    });
    const response = await reenrol(
      {
        certificate: foreign,
        clientCertificate: {
          certPem: toPem(foreign.rawData, "CERTIFICATE"),
          keyPem: await privateKeyPem(keys),
        },
      },
      (await makeCsr("CN=foreign.devices.example.com")).base64,
    );
    assert.equal(response.status, 403, response.body);
    assert.match(response.body, /not issued by a CA of mount "pki"/);
  });

  it("fail reenroll without certificate", async () => {
    const response = await reenrol(undefined, (await makeCsr("CN=n.devices.example.com")).base64);
    assert.equal(response.status, 403, response.body);
  });
});
