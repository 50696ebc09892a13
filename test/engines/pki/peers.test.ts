import assert from "node:assert/strict";
import { get } from "node:http";
import { after, before, describe, it } from "node:test";
import { connect, createServer, type TLSSocket } from "node:tls";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, run, runAsync, tempFiles } from "./fixtures.ts";

/** GETs a URL over plain HTTP without a keep-alive agent and returns the body; fails unless 200. */
function httpGet(url: string): Promise<{ contentType: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        if (response.statusCode !== 200) reject(new Error(`${url}: ${response.statusCode}`));
        else
          resolve({ contentType: response.headers["content-type"], body: Buffer.concat(chunks) });
      });
    }).on("error", reject);
  });
}

/** Resolves true when a mutual-TLS handshake with these client credentials succeeds. */
async function handshake(options: {
  server: { key: string; cert: string };
  client: { key: string; cert: string };
  ca: string[];
  crl?: string[];
}): Promise<{ ok: boolean; error?: string }> {
  const server = createServer({
    key: options.server.key,
    cert: options.server.cert,
    ca: options.ca,
    requestCert: true,
    rejectUnauthorized: true,
    ...(options.crl ? { crl: options.crl } : {}),
  });
  const serverErrors: string[] = [];
  server.on("tlsClientError", (error) => serverErrors.push(error.message));
  server.on("secureConnection", (socket: TLSSocket) => socket.end("hello"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const socket = connect({
        host: "127.0.0.1",
        port,
        key: options.client.key,
        cert: options.client.cert,
        ca: options.ca,
        servername: "localhost",
      });
      let data = "";
      socket.on("data", (chunk) => {
        data += chunk.toString();
      });
      socket.on("end", () =>
        resolve(
          data === "hello"
            ? { ok: true }
            : { ok: false, error: serverErrors.join("; ") || "no data" },
        ),
      );
      socket.on("error", (error) =>
        resolve({ ok: false, error: `${error.message} ${serverErrors.join("; ")}` }),
      );
      socket.on("close", () =>
        resolve({ ok: data === "hello", error: `closed; ${serverErrors.join("; ")}` }),
      );
    });
  } finally {
    server.close();
  }
}

// Real programs that consume Keyward's certificates, CRLs and OCSP
// responses, against a Keyward server listening on loopback.
describe("PKI with real peers", () => {
  let t: TestApp;
  let base = "";
  const files = tempFiles();
  let rootPem = "";
  let intermediatePem = "";
  let server: { key: string; cert: string; serial: string };
  let client: { key: string; cert: string; serial: string };

  const fetchText = async (path: string) => (await httpGet(`${base}${path}`)).body.toString("utf8");

  before(async () => {
    t = await createPkiApp();
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/pki_int",
      payload: { type: "pki", config: { max_lease_ttl: "43800h" } },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);

    for (const mount of ["pki", "pki_int"]) {
      await ok(t, "POST", `/v1/${mount}/config/urls`, {
        issuing_certificates: `${base}/v1/${mount}/ca`,
        crl_distribution_points: `${base}/v1/${mount}/crl`,
        ocsp_servers: `${base}/v1/${mount}/ocsp`,
      });
    }
    const root = await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Keyward Test Root",
      organization: "Keyward",
      key_type: "ec",
      key_bits: 384,
      ttl: "87600h",
    });
    rootPem = root.certificate;
    const csr = await ok(t, "POST", "/v1/pki_int/intermediate/generate/internal", {
      common_name: "Keyward Test Intermediate",
      key_type: "ec",
    });
    const signed = await ok(t, "POST", "/v1/pki/root/sign-intermediate", {
      csr: csr.csr,
      common_name: "Keyward Test Intermediate",
      ttl: "43800h",
      max_path_length: 0,
    });
    intermediatePem = signed.certificate;
    await ok(t, "POST", "/v1/pki_int/intermediate/set-signed", {
      certificate: `${signed.certificate}\n${rootPem}`,
    });
    await ok(t, "POST", "/v1/pki_int/roles/tls", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      allow_localhost: true,
      key_type: "ec",
      max_ttl: "720h",
    });
    const serverCert = await ok(t, "POST", "/v1/pki_int/issue/tls", {
      common_name: "localhost",
      ip_sans: "127.0.0.1",
    });
    server = {
      key: serverCert.private_key,
      cert: serverCert.certificate,
      serial: serverCert.serial_number,
    };
    const clientCert = await ok(t, "POST", "/v1/pki_int/issue/tls", {
      common_name: "client.example.test",
    });
    client = {
      key: clientCert.private_key,
      cert: clientCert.certificate,
      serial: clientCert.serial_number,
    };
    files.write("root.pem", rootPem);
    files.write("int.pem", intermediatePem);
    files.write("server.pem", server.cert);
    files.write("client.pem", client.cert);
    files.write("chain.pem", `${client.cert}\n${intermediatePem}\n${rootPem}\n`);
  });

  after(async () => {
    await t.close();
    files.cleanup();
  });

  it("passes openssl verify", (c) => {
    if (!requirePeer(c, "openssl")) return;
    for (const leaf of ["server.pem", "client.pem"]) {
      const result = run("openssl", [
        "verify",
        "-CAfile",
        `${files.dir}/root.pem`,
        "-untrusted",
        `${files.dir}/int.pem`,
        `${files.dir}/${leaf}`,
      ]);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /: OK/);
    }
    const intermediate = run("openssl", [
      "verify",
      "-CAfile",
      `${files.dir}/root.pem`,
      `${files.dir}/int.pem`,
    ]);
    assert.equal(intermediate.status, 0, intermediate.output);
  });

  it("passes certtool verify-chain", (c) => {
    if (!requirePeer(c, "certtool")) return;
    const result = run("certtool", ["--verify-chain", "--infile", `${files.dir}/chain.pem`]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Chain verification output: Verified/);
  });

  it("serves CA and CRL over HTTP", async () => {
    assert.equal((await fetchText("/v1/pki/ca/pem")).trim(), rootPem.trim());
    const der = await httpGet(`${base}/v1/pki_int/ca`);
    assert.equal(der.contentType, "application/pkix-cert");
    assert.ok(der.body.length > 0);
    assert.match(await fetchText("/v1/pki_int/crl/pem"), /BEGIN X509 CRL/);
  });

  it("completes a mutual-TLS handshake", async () => {
    const result = await handshake({ server, client, ca: [rootPem, intermediatePem] });
    assert.equal(result.ok, true, result.error);
  });

  it("answers OCSP good then revoked", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    const query = () =>
      runAsync("openssl", [
        "ocsp",
        "-issuer",
        `${files.dir}/int.pem`,
        "-cert",
        `${files.dir}/client.pem`,
        "-url",
        `${base}/v1/pki_int/ocsp`,
        "-CAfile",
        `${files.dir}/root.pem`,
        "-VAfile",
        `${files.dir}/int.pem`,
      ]);
    const before = await query();
    assert.equal(before.status, 0, before.output);
    assert.match(before.output, /client\.pem: good/);
    assert.match(before.output, /Response verify OK/);

    await ok(t, "POST", "/v1/pki_int/revoke", { serial_number: client.serial });
    const afterRevocation = await query();
    assert.equal(afterRevocation.status, 0, afterRevocation.output);
    assert.match(afterRevocation.output, /client\.pem: revoked/);
  });

  it("fails openssl crl_check after revocation", async (c) => {
    if (!requirePeer(c, "openssl")) return;
    files.write("int-crl.pem", await fetchText("/v1/pki_int/crl/pem"));
    files.write("root-crl.pem", await fetchText("/v1/pki/crl/pem"));
    const revoked = run("openssl", [
      "verify",
      "-crl_check",
      "-CAfile",
      `${files.dir}/root.pem`,
      "-untrusted",
      `${files.dir}/int.pem`,
      "-CRLfile",
      `${files.dir}/int-crl.pem`,
      `${files.dir}/client.pem`,
    ]);
    assert.notEqual(revoked.status, 0, revoked.output);
    assert.match(revoked.output, /certificate revoked/);
    const good = run("openssl", [
      "verify",
      "-crl_check_all",
      "-CAfile",
      `${files.dir}/root.pem`,
      "-untrusted",
      `${files.dir}/int.pem`,
      "-CRLfile",
      `${files.dir}/int-crl.pem`,
      "-CRLfile",
      `${files.dir}/root-crl.pem`,
      `${files.dir}/server.pem`,
    ]);
    assert.equal(good.status, 0, good.output);
  });

  it("rejects a revoked client in TLS", async () => {
    const crl = [await fetchText("/v1/pki_int/crl/pem"), await fetchText("/v1/pki/crl/pem")];
    const revoked = await handshake({ server, client, ca: [rootPem, intermediatePem], crl });
    assert.equal(revoked.ok, false);
    const fresh = await ok(t, "POST", "/v1/pki_int/issue/tls", {
      common_name: "other.example.test",
    });
    const good = await handshake({
      server,
      client: { key: fresh.private_key, cert: fresh.certificate },
      ca: [rootPem, intermediatePem],
      crl,
    });
    assert.equal(good.ok, true, good.error);
  });

  it("rejects an expired client in TLS", async () => {
    const shortLived = await ok(t, "POST", "/v1/pki_int/issue/tls", {
      common_name: "brief.example.test",
      ttl: "1s",
    });
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const result = await handshake({
      server,
      client: { key: shortLived.private_key, cert: shortLived.certificate },
      ca: [rootPem, intermediatePem],
    });
    assert.equal(result.ok, false);
  });
});
