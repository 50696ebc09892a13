import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requirePeer } from "../../../helpers/peers.ts";
import { run, runAsync } from "../fixtures.ts";
import {
  type AcmeTestServer,
  assertChainVerifies,
  startAcmeServer,
  TEST_DOMAIN,
} from "./fixtures.ts";

/** Asserts that the OCSP responder reports the first certificate of `certificatePath` revoked. */
async function assertRevokedByOcsp(server: AcmeTestServer, certificatePath: string): Promise<void> {
  const rootPath = server.files.write("ocsp-root.pem", server.rootPem);
  const result = await runAsync("openssl", [
    "ocsp",
    "-issuer",
    rootPath,
    "-cert",
    certificatePath,
    "-url",
    `${server.base}/v1/pki/ocsp`,
    "-CAfile",
    rootPath,
  ]);
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /: revoked/);
}

// Real ACME clients from Debian's packages against a Keyward server on
// loopback. The validator's hosts map sends every *.acme.test name to
// 127.0.0.1, where the client's own standalone server responds.
describe("ACME with real clients", () => {
  let server: AcmeTestServer;

  before(async () => {
    server = await startAcmeServer();
  });

  after(async () => {
    await server?.close();
  });

  it("certbot obtains, renews and revokes", async (t) => {
    if (!requirePeer(t, "certbot") || !requirePeer(t, "openssl")) return;
    const dir = join(server.files.dir, "certbot");
    const common = [
      "--config-dir",
      join(dir, "config"),
      "--work-dir",
      join(dir, "work"),
      "--logs-dir",
      join(dir, "logs"),
      "--non-interactive",
    ];
    const name = `certbot.${TEST_DOMAIN}`;
    const obtained = await runAsync("certbot", [
      "certonly",
      ...common,
      "--server",
      server.directoryUrl,
      "--standalone",
      "--http-01-port",
      String(server.httpPort),
      "--http-01-address",
      "127.0.0.1",
      "--agree-tos",
      "--register-unsafely-without-email",
      "--cert-name",
      "keyward",
      "-d",
      name,
    ]);
    assert.equal(obtained.status, 0, obtained.output);
    const live = join(dir, "config", "live", "keyward");
    const first = readFileSync(join(live, "fullchain.pem"), "utf8");
    assertChainVerifies(server, first, run);

    // Without --no-random-sleep-on-renew, certbot sleeps up to 8 minutes when stdin is not a terminal.
    const renewed = await runAsync("certbot", [
      "renew",
      ...common,
      "--force-renewal",
      "--no-random-sleep-on-renew",
    ]);
    assert.equal(renewed.status, 0, renewed.output);
    const second = readFileSync(join(live, "fullchain.pem"), "utf8");
    assert.notEqual(second, first);
    assertChainVerifies(server, second, run);

    const revoked = await runAsync("certbot", [
      "revoke",
      ...common,
      "--server",
      server.directoryUrl,
      "--cert-path",
      join(live, "cert.pem"),
      "--reason",
      "superseded",
      "--no-delete-after-revoke",
    ]);
    assert.equal(revoked.status, 0, revoked.output);
    await assertRevokedByOcsp(server, join(live, "cert.pem"));
  });

  it("lego obtains over http-01 and tls-alpn-01, and renews", async (t) => {
    if (!requirePeer(t, "lego") || !requirePeer(t, "openssl")) return;
    const path = join(server.files.dir, "lego");
    const common = [
      "--server",
      server.roleDirectoryUrl,
      "--email",
      "ops@example.com",
      "--accept-tos",
      "--path",
      path,
    ];
    const names = [`lego.${TEST_DOMAIN}`, `www.lego.${TEST_DOMAIN}`];
    const http = await runAsync("lego", [
      ...common,
      "--http",
      "--http.port",
      `127.0.0.1:${server.httpPort}`,
      ...names.flatMap((name) => ["--domains", name]),
      "run",
    ]);
    assert.equal(http.status, 0, http.output);
    const certificates = join(path, "certificates");
    const httpChain = readFileSync(join(certificates, `${names[0]}.crt`), "utf8");
    assertChainVerifies(server, httpChain, run);

    const alpnName = `alpn.lego.${TEST_DOMAIN}`;
    const alpn = await runAsync("lego", [
      ...common,
      "--tls",
      "--tls.port",
      `127.0.0.1:${server.tlsPort}`,
      "--domains",
      alpnName,
      "run",
    ]);
    assert.equal(alpn.status, 0, alpn.output);
    assertChainVerifies(server, readFileSync(join(certificates, `${alpnName}.crt`), "utf8"), run);

    const renewed = await runAsync("lego", [
      ...common,
      "--http",
      "--http.port",
      `127.0.0.1:${server.httpPort}`,
      ...names.flatMap((name) => ["--domains", name]),
      "renew",
      "--days",
      "9999",
      "--no-random-sleep",
    ]);
    assert.equal(renewed.status, 0, renewed.output);
    const renewedChain = readFileSync(join(certificates, `${names[0]}.crt`), "utf8");
    assert.notEqual(renewedChain, httpChain);
    assertChainVerifies(server, renewedChain, run);
    assert.ok(readdirSync(certificates).length >= 4);
  });
});
