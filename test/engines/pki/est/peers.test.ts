import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../../helpers/app.ts";
import { requirePeer } from "../../../helpers/peers.ts";
import { run, runAsync, tempFiles } from "../fixtures.ts";
import { createEstApp, createSecret, type EstTlsServer, startTlsServer } from "./fixtures.ts";

/**
 * A device's view of EST: openssl makes keys and CSRs and reads the
 * responses, curl talks to Keyward over TLS, as in a shell script on a
 * device.
 */
describe("EST with curl and openssl", () => {
  let t: TestApp;
  let server: EstTlsServer;
  let files: ReturnType<typeof tempFiles>;
  let caPath: string;

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false });
    server = await startTlsServer(t);
    files = tempFiles();
    caPath = files.write("server-ca.pem", server.caPem);
  });
  after(async () => {
    await server.close();
    await t.close();
    files.cleanup();
  });

  const path = (name: string) => join(files.dir, name);

  /** Runs curl against the server, trusting the PKI's root, and returns the HTTP status. */
  async function curl(endpoint: string, args: string[], output: string): Promise<number> {
    const result = await runAsync("curl", [
      "-sS",
      "--cacert",
      caPath,
      "-o",
      path(output),
      "-w",
      "%{http_code}",
      ...args,
      `${server.url}/.well-known/est/${endpoint}`,
    ]);
    assert.equal(result.status, 0, result.output);
    return Number(result.output.trim());
  }

  function openssl(args: string[]): string {
    const result = run("openssl", args);
    assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.output}`);
    return result.output;
  }

  /** Makes a key (unless `keyName` exists) and a base64 DER CSR for `subject`, as a device would. */
  function deviceCsr(name: string, subject: string, keyName = name): string {
    const keyArgs = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout"];
    const existing = existsSync(path(`${keyName}.key`));
    openssl([
      "req",
      "-new",
      "-nodes",
      ...(existing ? ["-key"] : keyArgs),
      path(`${keyName}.key`),
      "-subj",
      subject,
      "-outform",
      "DER",
      "-out",
      path(`${name}.csr.der`),
    ]);
    openssl(["base64", "-in", path(`${name}.csr.der`), "-out", path(`${name}.csr.b64`)]);
    return path(`${name}.csr.b64`);
  }

  /** Decodes a base64 certs-only PKCS#7 response to PEM certificates. */
  function printCertificates(base64Name: string, pemName: string): string {
    openssl(["base64", "-d", "-in", path(base64Name), "-out", path(`${base64Name}.der`)]);
    openssl([
      "pkcs7",
      "-inform",
      "DER",
      "-in",
      path(`${base64Name}.der`),
      "-print_certs",
      "-out",
      path(pemName),
    ]);
    return readFileSync(path(pemName), "utf8");
  }

  it("reads cacerts with openssl pkcs7", async (context) => {
    if (!requirePeer(context, "curl") || !requirePeer(context, "openssl")) return;
    assert.equal(await curl("cacerts", [], "cacerts.b64"), 200);
    const chain = printCertificates("cacerts.b64", "cacerts.pem");
    assert.match(chain, /subject=CN = EST Test Root/);
  });

  it("enrols and re-enrols like a device", async (context) => {
    if (!requirePeer(context, "curl") || !requirePeer(context, "openssl")) return;
    assert.equal(await curl("cacerts", [], "trust.b64"), 200);
    printCertificates("trust.b64", "trust.pem");

    // simpleenroll with the device's enrolment secret.
    const secret = await createSecret(t, "device-7");
    const subject = "/CN=device7.devices.example.com";
    const csr = deviceCsr("device7", subject);
    const enrolStatus = await curl(
      "simpleenroll",
      [
        "--data-binary",
        `@${csr}`,
        "-H",
        "Content-Type: application/pkcs10",
        "-u",
        `device-7:${secret}`,
      ],
      "device7.p7.b64",
    );
    assert.equal(enrolStatus, 200, readFileSync(path("device7.p7.b64"), "utf8"));
    printCertificates("device7.p7.b64", "device7.pem");
    assert.match(
      openssl(["verify", "-CAfile", path("trust.pem"), path("device7.pem")]),
      /device7.pem: OK/,
    );
    const firstSerial = openssl(["x509", "-in", path("device7.pem"), "-noout", "-serial"]);

    // The secret is single-use.
    const reused = await curl(
      "simpleenroll",
      [
        "--data-binary",
        `@${csr}`,
        "-H",
        "Content-Type: application/pkcs10",
        "-u",
        `device-7:${secret}`,
      ],
      "reused.txt",
    );
    assert.equal(reused, 401);

    // simplereenroll, authenticated by the certificate in TLS, with a new CSR of the same subject.
    const renewCsr = deviceCsr("device7-renew", subject, "device7");
    const renewStatus = await curl(
      "simplereenroll",
      [
        "--cert",
        path("device7.pem"),
        "--key",
        path("device7.key"),
        "--data-binary",
        `@${renewCsr}`,
        "-H",
        "Content-Type: application/pkcs10",
      ],
      "device7-renewed.p7.b64",
    );
    assert.equal(renewStatus, 200, readFileSync(path("device7-renewed.p7.b64"), "utf8"));
    printCertificates("device7-renewed.p7.b64", "device7-renewed.pem");
    assert.match(
      openssl(["verify", "-CAfile", path("trust.pem"), path("device7-renewed.pem")]),
      /OK/,
    );
    const renewedSerial = openssl([
      "x509",
      "-in",
      path("device7-renewed.pem"),
      "-noout",
      "-serial",
    ]);
    assert.notEqual(renewedSerial, firstSerial);
    assert.match(
      openssl(["x509", "-in", path("device7-renewed.pem"), "-noout", "-subject"]),
      /CN = device7.devices.example.com/,
    );

    // A re-enrolment CSR for another name is rejected.
    const otherCsr = deviceCsr("device7-other", "/CN=other.devices.example.com", "device7");
    const otherStatus = await curl(
      "simplereenroll",
      [
        "--cert",
        path("device7.pem"),
        "--key",
        path("device7.key"),
        "--data-binary",
        `@${otherCsr}`,
        "-H",
        "Content-Type: application/pkcs10",
      ],
      "device7-other.txt",
    );
    assert.equal(otherStatus, 400);
  });

  it("parses serverkeygen output with openssl", async (context) => {
    if (!requirePeer(context, "curl") || !requirePeer(context, "openssl")) return;
    assert.equal(await curl("cacerts", [], "keygen-trust.b64"), 200);
    printCertificates("keygen-trust.b64", "keygen-trust.pem");
    const secret = await createSecret(t, "device-keygen");
    const csr = deviceCsr("keygen", "/CN=keygen.devices.example.com");
    const status = await curl(
      "serverkeygen",
      [
        "--data-binary",
        `@${csr}`,
        "-H",
        "Content-Type: application/pkcs10",
        "-u",
        `device-keygen:${secret}`,
        "-D",
        path("keygen.headers"),
      ],
      "keygen.multipart",
    );
    assert.equal(status, 200, readFileSync(path("keygen.multipart"), "utf8"));

    const headers = readFileSync(path("keygen.headers"), "utf8");
    const boundary = /boundary=([^\s;]+)/i.exec(headers)?.[1];
    assert.ok(boundary, headers);
    const parts = readFileSync(path("keygen.multipart"), "utf8")
      .split(`--${boundary}`)
      .slice(1, -1);
    assert.equal(parts.length, 2);
    files.write("keygen-key.b64", parts[0]!.split("\r\n\r\n")[1]!);
    files.write("keygen-cert.b64", parts[1]!.split("\r\n\r\n")[1]!);

    openssl(["base64", "-d", "-in", path("keygen-key.b64"), "-out", path("keygen-key.der")]);
    const keyPublic = openssl(["pkey", "-inform", "DER", "-in", path("keygen-key.der"), "-pubout"]);
    printCertificates("keygen-cert.b64", "keygen-cert.pem");
    const certificatePublic = openssl([
      "x509",
      "-in",
      path("keygen-cert.pem"),
      "-noout",
      "-pubkey",
    ]);
    assert.equal(keyPublic, certificatePublic, "the key belongs to the certificate");
    assert.match(
      openssl(["verify", "-CAfile", path("keygen-trust.pem"), path("keygen-cert.pem")]),
      /OK/,
    );
  });

  it("reads csrattrs with openssl asn1parse", async (context) => {
    if (!requirePeer(context, "curl") || !requirePeer(context, "openssl")) return;
    assert.equal(await curl("csrattrs", [], "csrattrs.b64"), 200);
    openssl(["base64", "-d", "-in", path("csrattrs.b64"), "-out", path("csrattrs.der")]);
    const parsed = openssl(["asn1parse", "-inform", "DER", "-in", path("csrattrs.der")]);
    assert.match(parsed, /id-ecPublicKey/);
    assert.match(parsed, /prime256v1/);
    assert.match(parsed, /ecdsa-with-SHA256/);
  });

  it("rejects a wrong password", async (context) => {
    if (!requirePeer(context, "curl") || !requirePeer(context, "openssl")) return;
    await createSecret(t, "device-wrong");
    const csr = deviceCsr("wrong", "/CN=wrong.devices.example.com");
    const status = await curl(
      "simpleenroll",
      [
        "--data-binary",
        `@${csr}`,
        "-H",
        "Content-Type: application/pkcs10",
        "-u",
        "device-wrong:not-the-secret",
      ],
      "wrong.txt",
    );
    assert.equal(status, 401);
    assert.match(readFileSync(path("wrong.txt"), "utf8"), /credentials are missing or invalid/);
  });
});
