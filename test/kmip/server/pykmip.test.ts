import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { after, before, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { type KmipServer, startKmipServer } from "../../../src/kmip/server/listener.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { hasProgram, IN_CI, requirePeer } from "../../helpers/peers.ts";
import { makeTestPki, type TestPki } from "./certs.ts";

/** Debian's python3-pykmip installs into the system Python, which may not be first on PATH. */
const SYSTEM_PYTHON = "/usr/bin/python3";
const CLIENT_SCRIPT = fileURLToPath(new URL("./pykmip-client.py", import.meta.url));

function hasPyKmip(): boolean {
  if (!existsSync(SYSTEM_PYTHON)) return false;
  return (
    spawnSync(SYSTEM_PYTHON, ["-c", "import kmip.pie.client"], { stdio: "ignore" }).status === 0
  );
}

/** Skips when PyKMIP is missing, except in CI, where that fails the test. */
function requirePyKmip(t: TestContext): boolean {
  if (hasPyKmip()) return true;
  const message = "PyKMIP is not installed (scripts/install-peers.sh installs python3-pykmip)";
  if (IN_CI) throw new Error(message);
  t.skip(message);
  return false;
}

const logger = { error() {}, warn() {}, info() {} };

describe("PyKMIP client against the listener", { skip: !hasProgram("openssl") && !IN_CI }, () => {
  let pki: TestPki;
  let server: KmipServer;

  before(async () => {
    pki = makeTestPki("pykmip-client");
    server = await startKmipServer({
      dispatcher: new KmipDispatcher({ store: new KmipObjectStore(new MemoryBarrier()) }),
      host: "127.0.0.1",
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      logger,
    });
  });

  after(async () => {
    await server?.close();
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  });

  for (const version of ["1.2", "2.0"]) {
    it(`drives every operation over KMIP ${version}`, async (t) => {
      if (!requirePeer(t, "openssl") || !requirePyKmip(t)) return;
      // The server runs in this process, so the client must run asynchronously.
      const run = await new Promise<{ status: number; stdout: string; stderr: string }>(
        (resolve) => {
          execFile(
            SYSTEM_PYTHON,
            [
              CLIENT_SCRIPT,
              String(server.port),
              pki.clientCertPath,
              pki.clientKeyPath,
              pki.caPath,
              version,
            ],
            { encoding: "utf8", timeout: 60_000 },
            (error, stdout, stderr) => resolve({ status: error === null ? 0 : 1, stdout, stderr }),
          );
        },
      );
      assert.equal(run.status, 0, `PyKMIP client failed:\n${run.stderr}`);
      const results = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
      assert.equal(typeof results.create, "string");
      assert.equal(results.get_length, 32);
      assert.deepEqual(results.get_attributes, ["Cryptographic Algorithm", "State"]);
      assert.deepEqual(results.locate, [results.create]);
      assert.equal(results.encrypt_length, 16);
      assert.equal(results.decrypt, "attack at dawn");
      assert.equal(results.sign_length, 256);
      assert.equal(results.signature_verify, "VALID");
      const expectedMac = createHmac("sha256", Buffer.from([...Array(32).keys()]))
        .update("log line")
        .digest("hex");
      assert.equal(results.mac, expectedMac);
      assert.equal(results.register_secret, "hunter2");
      assert.equal(results.revoke, true);
      assert.equal(results.destroy, true);
    });
  }
});
