import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
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

type ClientCertificate = { certPem: string; keyPem: string };

describe("EST simplereenroll hostile bodies", () => {
  let t: TestApp;
  let server: EstTlsServer;
  let enrolled: ClientCertificate;
  const subject = "CN=held.devices.example.com";

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false });
    server = await startTlsServer(t);
    const secret = await createSecret(t, "held");
    const csr = await makeCsr(subject);
    const response = await tlsRequest(server, {
      method: "POST",
      path: "/.well-known/est/simpleenroll",
      headers: { ...PKCS10, authorization: basic("held", secret) },
      body: csr.base64,
    });
    assert.equal(response.status, 200, response.body);
    const [der] = decodeCertsOnly(Buffer.from(response.body, "base64"));
    enrolled = {
      certPem: toPem(new x509.X509Certificate(der!).rawData, "CERTIFICATE"),
      keyPem: await privateKeyPem(csr.keys),
    };
  });

  after(async () => {
    await server?.close();
    await t?.close();
  });

  const issuedCount = async () => (await t.keyward.pki("pki")!.inventory.serials()).length;

  function reenrol(
    body: string,
    headers: Record<string, string> = PKCS10,
    clientCertificate = enrolled,
  ) {
    return tlsRequest(server, {
      method: "POST",
      path: "/.well-known/est/simplereenroll",
      headers,
      body,
      clientCertificate,
    });
  }

  it("accepts base64 wrapped in CRLF lines", async () => {
    const csr = (await makeCsr(subject)).base64;
    const wrapped = `\r\n${csr.match(/.{1,64}/g)!.join("\r\n")}\r\n`;

    const response = await reenrol(wrapped);

    assert.equal(response.status, 200, response.body);
  });

  it("rejects bad bodies without issuing", async () => {
    const csr = (await makeCsr(subject)).base64;
    const der = Buffer.from(csr, "base64");
    const cases: [string, string, Record<string, string>, number][] = [
      ["empty body", "", PKCS10, 400],
      ["whitespace only", " \r\n\t", PKCS10, 400],
      [
        "PEM",
        `-----BEGIN CERTIFICATE REQUEST-----\n${csr}\n-----END CERTIFICATE REQUEST-----\n`,
        PKCS10,
        400,
      ],
      ["base64url", der.toString("base64url"), PKCS10, 400],
      ["trailing DER bytes", Buffer.concat([der, Buffer.alloc(3)]).toString("base64"), PKCS10, 400],
      ["body over the size limit", "A".repeat(2 * 1024 * 1024), PKCS10, 413],
      ["JSON content type", csr, { "content-type": "application/json" }, 415],
      ["no content type", csr, {}, 415],
      ["form content type", csr, { "content-type": "application/x-www-form-urlencoded" }, 415],
      ["subject with extra O", (await makeCsr(`${subject},O=Other`)).base64, PKCS10, 400],
      ["subject in other case", (await makeCsr(subject.toUpperCase())).base64, PKCS10, 400],
    ];
    const before = await issuedCount();

    for (const [name, body, headers, status] of cases) {
      const response = await reenrol(body, headers);
      assert.equal(response.status, status, `${name}: ${response.body}`);
      assert.match(String(response.headers["content-type"]), /^text\/plain/, name);
    }

    assert.equal(await issuedCount(), before);
  });

  it("rejects expired client certificate", async () => {
    const issued = await ok(t, "POST", "/v1/pki/issue/devices", {
      common_name: "expired.devices.example.com",
      ttl: "1s",
      private_key_format: "pkcs8",
    });
    // Waits past the certificate's one-second validity.
    await sleep(2500);
    const before = await issuedCount();

    const response = await reenrol(
      (await makeCsr("CN=expired.devices.example.com")).base64,
      PKCS10,
      { certPem: issued.certificate, keyPem: issued.private_key },
    );

    assert.equal(response.status, 403, response.body);
    assert.match(response.body, /expired or not yet valid/);
    assert.equal(await issuedCount(), before);
  });
});
