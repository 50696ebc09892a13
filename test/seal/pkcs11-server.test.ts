import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { decodeRootToken } from "../../src/auth/root-generation.ts";
import { callServer } from "../helpers/http.ts";
import { requirePeer } from "../helpers/peers.ts";
import { cli, type PlainServerProcess, startServerProcess } from "../helpers/server-process.ts";
import {
  requireSoftHsm,
  SOFTHSM_LIBRARY,
  SoftHsm,
  softHsmInstalled,
  writePinFiles,
} from "../hsm/softhsm.ts";

const TOKEN = "keyward-server";
const EMPTY_TOKEN = "keyward-empty";
const PIN = "server-pin-2468";
const WRONG_PIN = "wrong-pin-9753";
const KEY_LABEL = "keyward-root-wrapping-key";

/** Expects `start` to fail because the server exited non-zero, and returns its output. */
async function startFails(start: Promise<PlainServerProcess>): Promise<string> {
  let output = "";
  await assert.rejects(start, (error: unknown) => {
    output = (error as Error).message;
    assert.match(output, /server exited with status [1-9]/);
    return true;
  });
  return output;
}

describe("keyward server with a PKCS#11 seal", () => {
  let hsm: SoftHsm | undefined;
  const folder = mkdtempSync(join(tmpdir(), "keyward-pkcs11-server-"));
  const dataDir = join(folder, "data");
  const { pinFile, wrongPinFile } = writePinFiles(folder, PIN, WRONG_PIN);
  let server: PlainServerProcess | undefined;
  let rootToken = "";
  let recoveryKeys: string[] = [];
  let ciphertext = "";
  const plaintext = Buffer.from("encrypted before the restart").toString("base64");

  before(() => {
    if (softHsmInstalled()) hsm = SoftHsm.withTokens([TOKEN, EMPTY_TOKEN], PIN);
  });

  after(async () => {
    await server?.stop();
    hsm?.remove();
    rmSync(folder, { recursive: true, force: true });
  });

  function sealFlags(tokenLabel = TOKEN, pin = pinFile): string[] {
    return [
      "--seal-pkcs11-library",
      SOFTHSM_LIBRARY,
      "--seal-pkcs11-token-label",
      tokenLabel,
      "--seal-pkcs11-pin-file",
      pin,
    ];
  }

  function start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<PlainServerProcess> {
    return startServerProcess(["--log-level", "info", ...args], { ...hsm!.env, ...env });
  }

  function ready(t: TestContext): boolean {
    return requireSoftHsm(t) && hsm !== undefined;
  }

  it("init returns recovery shares and unseals", async (t) => {
    if (!ready(t)) return;
    server = await start(["--data-dir", dataDir, ...sealFlags()]);
    const initial = await callServer(server.address, "GET", "sys/seal-status");
    assert.equal(initial.body.type, "pkcs11");
    assert.equal(initial.body.recovery_seal, true);
    assert.equal(initial.body.initialized, false);

    const shamirFields = await callServer(server.address, "PUT", "sys/init", {
      secret_shares: 3,
      secret_threshold: 2,
    });
    assert.equal(shamirFields.status, 400, "recovery counts are required");
    assert.equal(shamirFields.body.field, "recovery_shares");

    const init = await callServer(server.address, "PUT", "sys/init", {
      recovery_shares: 3,
      recovery_threshold: 2,
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    assert.deepEqual(init.body.keys, []);
    assert.equal(init.body.recovery_keys.length, 3);
    assert.equal(init.body.recovery_keys_base64.length, 3);
    recoveryKeys = init.body.recovery_keys;
    rootToken = init.body.root_token;

    const status = await callServer(server.address, "GET", "sys/seal-status");
    assert.equal(status.body.sealed, false, "the server unseals itself after init");
    assert.equal(status.body.t, 2);
    assert.equal(status.body.n, 3);
    assert.equal(status.body.recovery_seal_type, "shamir");
  });

  // The seal unseals itself inside the init request, so its response is audited.
  it("init's audit record hides the recovery shares", async (t) => {
    if (!ready(t) || !server) return;
    const searched = await callServer(
      server.address,
      "GET",
      "sys/audit/search?path_prefix=sys/init",
      undefined,
      rootToken,
    );
    assert.equal(searched.status, 200, JSON.stringify(searched.body));
    const records = searched.body.data.records as { response?: { data?: unknown } }[];
    const response = records.find((record) => record.response !== undefined);
    assert.ok(response, "the init response was not audited");
    const text = JSON.stringify(records);
    for (const share of recoveryKeys) {
      assert.equal(text.includes(share), false, "a record shows a recovery share (hex)");
      const base64 = Buffer.from(share, "hex").toString("base64");
      assert.equal(text.includes(base64), false, "a record shows a recovery share (base64)");
    }
  });

  it("transit encrypts", async (t) => {
    if (!ready(t) || !server) return;
    const created = await callServer(server.address, "POST", "transit/keys/ledger", {}, rootToken);
    assert.ok(created.status < 300, JSON.stringify(created.body));
    const encrypted = await callServer(
      server.address,
      "POST",
      "transit/encrypt/ledger",
      { plaintext },
      rootToken,
    );
    assert.equal(encrypted.status, 200, JSON.stringify(encrypted.body));
    ciphertext = encrypted.body.data.ciphertext;
  });

  it("pkcs11-tool lists the wrapping key", (t) => {
    if (!ready(t) || !requirePeer(t, "pkcs11-tool")) return;
    const listed = hsm!.listObjects(TOKEN, PIN);
    assert.equal(listed.status, 0, listed.output);
    assert.match(listed.output, /Secret Key Object; AES length 32/);
    assert.match(listed.output, new RegExp(`label:\\s+${KEY_LABEL}`));
    assert.match(listed.output, /never extractable/);
  });

  it("generate-root with recovery shares", async (t) => {
    if (!ready(t) || !server) return;
    const started = await callServer(server.address, "PUT", "sys/generate-root/attempt", {});
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const { nonce, otp } = started.body;
    assert.equal(started.body.required, 2);
    await callServer(server.address, "PUT", "sys/generate-root/update", {
      key: recoveryKeys[0],
      nonce,
    });
    const done = await callServer(server.address, "PUT", "sys/generate-root/update", {
      key: recoveryKeys[2],
      nonce,
    });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.complete, true);
    const newRoot = decodeRootToken(done.body.encoded_token, otp);
    const lookup = await callServer(
      server.address,
      "GET",
      "auth/token/lookup-self",
      undefined,
      newRoot,
    );
    assert.equal(lookup.status, 200, JSON.stringify(lookup.body));
  });

  it("rekey replaces the recovery shares", async (t) => {
    if (!ready(t) || !server) return;
    const started = await callServer(server.address, "PUT", "sys/rekey/init", {
      secret_shares: 2,
      secret_threshold: 2,
    });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const nonce = started.body.nonce;
    await callServer(server.address, "PUT", "sys/rekey/update", { key: recoveryKeys[1], nonce });
    const done = await callServer(server.address, "PUT", "sys/rekey/update", {
      key: recoveryKeys[2],
      nonce,
    });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.complete, true);
    assert.equal(done.body.keys.length, 2);
    recoveryKeys = done.body.keys;
    const status = await callServer(server.address, "GET", "sys/seal-status");
    assert.equal(status.body.n, 2);
    assert.equal(status.body.t, 2);
  });

  it("operator seal and recovery unseal", async (t) => {
    if (!ready(t) || !server) return;
    const sealed = await callServer(server.address, "PUT", "sys/seal", {}, rootToken);
    assert.equal(sealed.status, 204, JSON.stringify(sealed.body));
    assert.equal((await callServer(server.address, "GET", "sys/seal-status")).body.sealed, true);
    const refused = await callServer(
      server.address,
      "GET",
      "transit/keys/ledger",
      undefined,
      rootToken,
    );
    assert.equal(refused.status, 503);

    for (const key of recoveryKeys) {
      const result = await callServer(server.address, "PUT", "sys/unseal", { key });
      assert.equal(result.status, 200, JSON.stringify(result.body));
    }
    assert.equal((await callServer(server.address, "GET", "sys/seal-status")).body.sealed, false);
  });

  it("restart unseals and decrypts", async (t) => {
    if (!ready(t) || !server) return;
    await callServer(server.address, "PUT", "sys/seal", {}, rootToken);
    assert.equal(await server.stop(), 0);
    const output = server.output();
    assert.ok(!output.includes(PIN), "the log must not contain the PIN");

    // The PIN comes from the environment this time.
    const flags = sealFlags().slice(0, 4);
    server = await start(["--data-dir", dataDir, ...flags], { KEYWARD_SEAL_PKCS11_PIN: PIN });
    const status = await callServer(server.address, "GET", "sys/seal-status");
    assert.equal(status.body.sealed, false, "the server unseals itself at start");
    const decrypted = await callServer(
      server.address,
      "POST",
      "transit/decrypt/ledger",
      { ciphertext },
      rootToken,
    );
    assert.equal(decrypted.status, 200, JSON.stringify(decrypted.body));
    assert.equal(decrypted.body.data.plaintext, plaintext);
    assert.equal(await server.stop(), 0);
    assert.ok(!server.output().includes(PIN), "the log must not contain the PIN");
    server = undefined;
  });

  it("wrong PIN stops the server", async (t) => {
    if (!ready(t)) return;
    const output = await startFails(
      start(["--data-dir", join(folder, "wrong-pin-data"), ...sealFlags(TOKEN, wrongPinFile)]),
    );
    assert.match(output, /login to token "keyward-server" .* failed: the user PIN is incorrect/);
    assert.ok(!output.includes(WRONG_PIN), "the output must not contain the PIN");
  });

  it("missing token stops the server", async (t) => {
    if (!ready(t)) return;
    const output = await startFails(
      start(["--data-dir", join(folder, "missing-token-data"), ...sealFlags("no-such-token")]),
    );
    assert.match(output, /no token labelled "no-such-token"/);
  });

  it("storage copy needs the HSM", async (t) => {
    if (!ready(t) || rootToken === "") return;
    const copy = join(folder, "copy");
    cpSync(dataDir, copy, { recursive: true });

    const withoutHsm = await startFails(start(["--data-dir", copy]));
    assert.match(withoutHsm, /initialised with a PKCS#11 seal/);

    // Another token has no wrapping key, so it cannot unwrap the copied root key.
    const otherToken = await startFails(start(["--data-dir", copy, ...sealFlags(EMPTY_TOKEN)]));
    assert.match(otherToken, /has no AES key labelled "keyward-root-wrapping-key"/);
  });

  it("Shamir storage refuses the HSM seal", async (t) => {
    if (!ready(t)) return;
    const shamirDir = join(folder, "shamir-data");
    const shamir = await start(["--data-dir", shamirDir]);
    const init = await callServer(shamir.address, "PUT", "sys/init", {
      secret_shares: 1,
      secret_threshold: 1,
    });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    const recovery = await callServer(shamir.address, "GET", "sys/seal-status");
    assert.equal(recovery.body.type, "shamir");
    assert.equal(recovery.body.recovery_seal, false);
    await shamir.stop();

    const output = await startFails(start(["--data-dir", shamirDir, ...sealFlags()]));
    assert.match(output, /initialised with a Shamir seal/);
  });

  it("CLI init prints recovery shares", async (t) => {
    if (!ready(t)) return;
    const other = await start(["--data-dir", join(folder, "cli-init"), ...sealFlags()]);
    try {
      const result = await cli(
        ["operator", "init", "--recovery-shares", "4", "--recovery-threshold", "2"],
        { KEYWARD_ADDR: other.address },
      );
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /^Recovery Key 4: /m);
      assert.doesNotMatch(result.stdout, /Unseal Key/);
      assert.match(result.stdout, /Initial Root Token: /);
      const status = await callServer(other.address, "GET", "sys/seal-status");
      assert.equal(status.body.sealed, false);
      assert.equal(status.body.n, 4);
    } finally {
      await other.stop();
    }
  });

  it("incomplete settings name the field", async (t) => {
    if (!ready(t)) return;
    const withoutPin = await startFails(
      start([
        "--data-dir",
        join(folder, "settings-data"),
        "--seal-pkcs11-library",
        SOFTHSM_LIBRARY,
        "--seal-pkcs11-token-label",
        TOKEN,
      ]),
    );
    assert.match(withoutPin, /invalid configuration "seal_pkcs11_pin_file"/);

    const withoutLibrary = await startFails(
      start(["--data-dir", join(folder, "settings-data"), "--seal-pkcs11-token-label", TOKEN]),
    );
    assert.match(withoutLibrary, /invalid configuration "seal_pkcs11_token_label"/);
  });
});
