import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { child, enumItem, textOf } from "../../../src/kmip/server/items.ts";
import { callServer } from "../../helpers/http.ts";
import { hasProgram, IN_CI, requirePeer } from "../../helpers/peers.ts";
import type { ServerProcess } from "../../helpers/server-process.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { resultReason, resultStatus } from "./helpers.ts";
import { type ClientCredential, callTls, freePort, startKmipDevServer } from "./server-helpers.ts";

/** Debian's python3-pykmip installs into the system Python, which may not be first on PATH. */
const SYSTEM_PYTHON = "/usr/bin/python3";
const POLICY_SCRIPT = fileURLToPath(new URL("./pykmip-policy.py", import.meta.url));

const CREATE_AND_GET = `
path "kmip/create" { capabilities = ["create"] }
path "kmip/get/*" { capabilities = ["read"] }
`;

/** Skips when PyKMIP is missing, except in CI, where that fails the test. */
function requirePyKmip(t: TestContext): boolean {
  const installed =
    existsSync(SYSTEM_PYTHON) &&
    spawnSync(SYSTEM_PYTHON, ["-c", "import kmip.pie.client"], { stdio: "ignore" }).status === 0;
  if (installed) return true;
  const message = "PyKMIP is not installed (scripts/install-peers.sh installs python3-pykmip)";
  if (IN_CI) throw new Error(message);
  t.skip(message);
  return false;
}

/**
 * Sends one Query over mutual TLS and returns its Batch Item, or rejects
 * with the TLS error when the handshake fails.
 */
async function query(port: number, credential: ClientCredential): Promise<StructureItem> {
  return callTls(port, credential, "Query", [enumItem("QueryFunction", "QueryOperations")], [2, 0]);
}

function resultOf(item: StructureItem): { status: string; reason?: string; message?: string } {
  const reason = resultReason(item);
  const message = child(item, "ResultMessage");
  return {
    status: resultStatus(item),
    ...(reason === undefined ? {} : { reason }),
    ...(message === undefined ? {} : { message: textOf(message) }),
  };
}

describe("keyward server with keyward's KMIP CA", () => {
  let server: ServerProcess | undefined;
  let kmipPort = 0;
  let dir = "";
  let caPem = "";

  /** Sends an HTTP request with the root token and returns the status and parsed body. */
  async function api(method: string, path: string, body?: object) {
    return callServer(server!.address, method, path, body, server!.rootToken);
  }

  async function generate(role: string): Promise<ClientCredential & { serial: string }> {
    const response = await api("POST", `sys/kmip/roles/${role}/credential/generate`, {});
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const data = response.body.data;
    return { cert: data.certificate, key: data.private_key, ca: caPem, serial: data.serial_number };
  }

  before(async () => {
    kmipPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), "keyward-kmip-ca-"));
    server = await startKmipDevServer(kmipPort, {
      args: ["--kmip-server-hostnames", "kmip.example.test,10.9.8.7"],
    });
    const ca = await fetch(`${server.address}/v1/sys/kmip/ca/pem`);
    assert.equal(ca.status, 200);
    caPem = await ca.text();
    writeFileSync(join(dir, "ca.pem"), caPem);
    assert.equal(
      (await api("PUT", "sys/policies/acl/kmip-create-get", { policy: CREATE_AND_GET })).status,
      204,
    );
    assert.equal(
      (await api("POST", "sys/kmip/roles/backup", { token_policies: ["kmip-create-get"] })).status,
      204,
    );
  });

  after(async () => {
    await server?.stop();
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("server certificate verifies against sys/kmip/ca", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const sClient = spawnSync(
      "openssl",
      [
        "s_client",
        "-connect",
        `127.0.0.1:${kmipPort}`,
        "-showcerts",
        "-CAfile",
        join(dir, "ca.pem"),
      ],
      { input: "", encoding: "utf8", timeout: 20_000 },
    );
    const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
      sClient.stdout,
    );
    assert.ok(leaf, `no certificate in the s_client output:\n${sClient.stderr}`);
    writeFileSync(join(dir, "server.pem"), `${leaf[0]}\n`);
    for (const check of [
      ["-verify_hostname", "localhost"],
      ["-verify_hostname", "kmip.example.test"],
      ["-verify_ip", "127.0.0.1"],
      ["-verify_ip", "10.9.8.7"],
    ]) {
      const output = execFileSync(
        "openssl",
        [
          "verify",
          "-CAfile",
          join(dir, "ca.pem"),
          "-purpose",
          "sslserver",
          ...check,
          join(dir, "server.pem"),
        ],
        { encoding: "utf8" },
      );
      assert.match(output, /: OK/, check.join(" "));
    }
  });

  it("credential verifies against the CA", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const credential = await generate("backup");
    writeFileSync(join(dir, "client.pem"), credential.cert);
    const output = execFileSync(
      "openssl",
      ["verify", "-CAfile", join(dir, "ca.pem"), "-purpose", "sslclient", join(dir, "client.pem")],
      { encoding: "utf8" },
    );
    assert.match(output, /: OK/);
  });

  it("pykmip role allows create and get only", async (t) => {
    if (!requirePyKmip(t)) return;
    const credential = await generate("backup");
    writeFileSync(join(dir, "pykmip.pem"), credential.cert);
    writeFileSync(join(dir, "pykmip.key"), credential.key);
    const run = await new Promise<{ error: Error | null; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(
          SYSTEM_PYTHON,
          [
            POLICY_SCRIPT,
            String(kmipPort),
            join(dir, "pykmip.pem"),
            join(dir, "pykmip.key"),
            join(dir, "ca.pem"),
          ],
          { encoding: "utf8", timeout: 60_000 },
          (error, stdout, stderr) => resolve({ error, stdout, stderr }),
        );
      },
    );
    assert.equal(run.error, null, `PyKMIP client failed:\n${run.stderr}`);
    const results = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.equal(typeof results.create, "string");
    assert.equal(results.get_length, 32);
    assert.equal(results.destroy.status, "OPERATION_FAILED");
    assert.equal(results.destroy.reason, "PERMISSION_DENIED");
    assert.match(results.destroy.message, /kmip\/destroy\//);
  });

  it("signs a CSR made by the client", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    execFileSync(
      "openssl",
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "csr.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=array-7",
      ],
      { cwd: dir, stdio: "pipe" },
    );
    const response = await api("POST", "sys/kmip/roles/backup/credential/sign", {
      csr: readFileSync(join(dir, "client.csr"), "utf8"),
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.equal(response.body.data.common_name, "array-7");
    assert.equal(response.body.data.private_key, undefined);
    const result = resultOf(
      await query(kmipPort, {
        cert: response.body.data.certificate,
        key: readFileSync(join(dir, "csr.key"), "utf8"),
        ca: caPem,
      }),
    );
    assert.equal(result.status, "Success");
  });

  it("revoked credential stops working", async () => {
    const credential = await generate("backup");
    assert.equal(resultOf(await query(kmipPort, credential)).status, "Success");
    const revoked = await api("POST", "sys/kmip/roles/backup/credential/revoke", {
      serial_number: credential.serial,
    });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.data.revoked, true);
    const result = resultOf(await query(kmipPort, credential));
    assert.equal(result.reason, "AuthenticationNotSuccessful");
    assert.match(result.message ?? "", /revoked/);
  });

  it("refuses a certificate of another CA", async (t) => {
    if (!requirePeer(t, "openssl") || !hasProgram("openssl")) return;
    const other: TestPki = makeTestPki("stranger");
    try {
      await assert.rejects(
        query(kmipPort, {
          cert: other.clientCert.toString(),
          key: other.clientKey.toString(),
          ca: caPem,
        }),
      );
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it("sealed server refuses handshakes until unseal", async () => {
    const credential = await generate("backup");
    assert.equal((await api("PUT", "sys/seal")).status, 204);
    await assert.rejects(query(kmipPort, credential));
    assert.equal(server!.child.exitCode, null);

    const key = readFileSync(join(server!.dataDir, "dev-unseal-key"), "utf8").trim();
    const unsealed = await api("PUT", "sys/unseal", { key });
    assert.equal(unsealed.body.sealed, false);
    assert.equal(resultOf(await query(kmipPort, credential)).status, "Success");
  });
});
