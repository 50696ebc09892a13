import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { callServer } from "../../helpers/http.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  type PlainServerProcess,
  type ServerProcess,
  startDevServer,
  startServerProcess,
} from "../../helpers/server-process.ts";
import {
  requireSoftHsm,
  SOFTHSM_LIBRARY,
  SoftHsm,
  softHsmInstalled,
  writePinFiles,
} from "../../hsm/softhsm.ts";
import { objectsLabelled } from "./hsm-fixture.ts";

const TOKEN = "keyward-engine-keys";
const SHARED_TOKEN = "keyward-shared";
const PIN = "server-engine-pin-8642";
const WRONG_PIN = "wrong-engine-pin-1357";

/** Sends a request and returns `data` of a 2xx response, failing with the body otherwise. */
async function ok(server: ServerProcess, method: string, path: string, body?: unknown) {
  const response = await callServer(server.address, method, path, body, server.rootToken);
  assert.ok(response.status < 300, `${method} ${path}: ${JSON.stringify(response.body)}`);
  return response.body?.data;
}

describe("keyward server with an HSM for engine keys", () => {
  let hsm: SoftHsm | undefined;
  const folder = mkdtempSync(join(tmpdir(), "keyward-hsm-server-"));
  const dataDir = join(folder, "data");
  const { pinFile, wrongPinFile } = writePinFiles(folder, PIN, WRONG_PIN);
  let server: ServerProcess | undefined;
  let sealed: PlainServerProcess | undefined;
  const plaintext = Buffer.from("encrypted before the restart").toString("base64");
  const message = Buffer.from("signed before the restart").toString("base64");
  let ciphertext = "";
  let signature = "";

  before(() => {
    if (softHsmInstalled()) hsm = SoftHsm.withTokens([TOKEN, SHARED_TOKEN], PIN);
  });

  after(async () => {
    await server?.stop();
    await sealed?.stop();
    hsm?.remove();
    rmSync(folder, { recursive: true, force: true });
  });

  /** Returns the engine HSM flags; `pin` null leaves the PIN file out, for a PIN from the environment. */
  function hsmFlags(tokenLabel = TOKEN, pin: string | null = pinFile): string[] {
    return [
      "--hsm-pkcs11-library",
      SOFTHSM_LIBRARY,
      "--hsm-pkcs11-token-label",
      tokenLabel,
      ...(pin === null ? [] : ["--hsm-pkcs11-pin-file", pin]),
    ];
  }

  function ready(t: TestContext): boolean {
    return requireSoftHsm(t) && hsm !== undefined;
  }

  function listObjects(tokenLabel: string): string {
    const listed = hsm!.listObjects(tokenLabel, PIN);
    assert.equal(listed.status, 0, listed.output);
    return listed.output;
  }

  it("creates and uses HSM keys", async (t) => {
    if (!ready(t)) return;
    server = await startDevServer({ dataDir, args: hsmFlags(), env: hsm!.env });
    const aes = await ok(server, "POST", "transit/keys/orders", { hsm: true });
    assert.equal(aes.hsm, true);
    const ec = await ok(server, "POST", "transit/keys/releases", {
      type: "ecdsa-p256",
      hsm: true,
    });
    assert.equal(ec.hsm, true);

    ciphertext = (await ok(server, "POST", "transit/encrypt/orders", { plaintext })).ciphertext;
    assert.match(ciphertext, /^keyward:v1:/);
    signature = (await ok(server, "POST", "transit/sign/releases", { input: message })).signature;
    assert.match(signature, /^keyward:v1:/);
  });

  it("restart finds the objects again", async (t) => {
    if (!ready(t) || !server) return;
    assert.equal(await server.stop(), 0);
    assert.ok(!server.output().includes(PIN), "the log must not contain the PIN");

    // The PIN comes from the environment this time.
    server = await startDevServer({
      dataDir,
      args: hsmFlags(TOKEN, null),
      env: { ...hsm!.env, KEYWARD_HSM_PKCS11_PIN: PIN },
    });
    const decrypted = await ok(server, "POST", "transit/decrypt/orders", { ciphertext });
    assert.equal(decrypted.plaintext, plaintext);
    const verified = await ok(server, "POST", "transit/verify/releases", {
      input: message,
      signature,
    });
    assert.equal(verified.valid, true);

    const rotated = await ok(server, "POST", "transit/keys/orders/rotate");
    assert.equal(rotated.latest_version, 2);
    const again = await ok(server, "POST", "transit/encrypt/orders", { plaintext });
    assert.match(again.ciphertext, /^keyward:v2:/);
    const old = await ok(server, "POST", "transit/decrypt/orders", { ciphertext });
    assert.equal(old.plaintext, plaintext);
  });

  it("pkcs11-tool sees the server's objects", (t) => {
    if (!ready(t) || !requirePeer(t, "pkcs11-tool")) return;
    const output = listObjects(TOKEN);
    for (const label of ["keyward/transit/orders/v1", "keyward/transit/orders/v2"]) {
      const [secret] = objectsLabelled(output, label);
      assert.ok(secret, `${label} is missing:\n${output}`);
      assert.match(secret, /Secret Key Object; AES length 32/);
      assert.match(secret, /never extractable/);
    }
    assert.equal(objectsLabelled(output, "keyward/transit/releases/v1").length, 2);
  });

  it("wrong PIN stops the server", async (t) => {
    if (!ready(t)) return;
    await server?.stop();
    server = undefined;
    await assert.rejects(
      startDevServer({ dataDir, args: hsmFlags(TOKEN, wrongPinFile), env: hsm!.env }),
      (error: unknown) => {
        const output = (error as Error).message;
        assert.match(output, /server exited with status 1/);
        assert.match(output, /login to token "keyward-engine-keys" of .* failed/);
        assert.ok(!output.includes(WRONG_PIN), "the output must not contain the PIN");
        return true;
      },
    );
  });

  it("missing token stops the server", async (t) => {
    if (!ready(t)) return;
    await assert.rejects(
      startDevServer({ dataDir, args: hsmFlags("no-such-token"), env: hsm!.env }),
      (error: unknown) => {
        const output = (error as Error).message;
        assert.match(output, /server exited with status 1/);
        assert.match(output, /no token labelled "no-such-token"/);
        return true;
      },
    );
  });

  it("seal and engines share a token", async (t) => {
    if (!ready(t)) return;
    sealed = await startServerProcess(
      [
        "--data-dir",
        join(folder, "sealed-data"),
        "--seal-pkcs11-library",
        SOFTHSM_LIBRARY,
        "--seal-pkcs11-token-label",
        SHARED_TOKEN,
        "--seal-pkcs11-pin-file",
        pinFile,
        ...hsmFlags(SHARED_TOKEN),
      ],
      hsm!.env,
    );
    const init = await callServer(sealed.address, "PUT", "sys/init", {
      recovery_shares: 1,
      recovery_threshold: 1,
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const root = init.body.root_token;
    const created = await callServer(
      sealed.address,
      "POST",
      "transit/keys/shared",
      { hsm: true },
      root,
    );
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const encrypted = await callServer(
      sealed.address,
      "POST",
      "transit/encrypt/shared",
      { plaintext },
      root,
    );
    assert.equal(encrypted.status, 200, JSON.stringify(encrypted.body));
    const decrypted = await callServer(
      sealed.address,
      "POST",
      "transit/decrypt/shared",
      { ciphertext: encrypted.body.data.ciphertext },
      root,
    );
    assert.equal(decrypted.body.data.plaintext, plaintext);

    if (!requirePeer(t, "pkcs11-tool")) return;
    const output = listObjects(SHARED_TOKEN);
    assert.equal(objectsLabelled(output, "keyward-root-wrapping-key").length, 1);
    assert.equal(objectsLabelled(output, "keyward/transit/shared/v1").length, 1);
  });
});
