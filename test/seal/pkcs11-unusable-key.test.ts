import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { DEFAULT_WRAPPING_KEY_LABEL } from "../../src/seal/wrapped-root-key.ts";
import { callServer } from "../helpers/http.ts";
import { type PlainServerProcess, startServerProcess } from "../helpers/server-process.ts";
import {
  requireSoftHsm,
  SOFTHSM_LIBRARY,
  SoftHsm,
  softHsmInstalled,
  writePinFiles,
} from "../hsm/softhsm.ts";

const TOKEN = "keyward-unusable-key";
const PIN = "unusable-key-pin-4821";
const DUPLICATE_LABEL = "keyward-duplicate-wrapping-key";

// A token whose key under the wrapping key label cannot serve as Keyward's
// AES-256 wrapping key is a configuration problem of the HSM. sys/init must
// reject it as an unusable key, as it does a key whose CKA_ENCRYPT is false,
// instead of responding with an internal error whose reason only the log has.
describe("PKCS#11 seal with an unusable wrapping key", () => {
  let hsm: SoftHsm | undefined;
  const servers: PlainServerProcess[] = [];
  const folder = mkdtempSync(join(tmpdir(), "keyward-breakit10-unusable-key-"));

  function generateAesKey(label: string, bytes: number): void {
    const created = hsm!.pkcs11Tool([
      "--token-label",
      TOKEN,
      "--login",
      "--pin",
      PIN,
      "--keygen",
      "--key-type",
      `AES:${bytes}`,
      "--label",
      label,
    ]);
    assert.equal(created.status, 0, created.output);
  }

  before(() => {
    if (!softHsmInstalled()) return;
    hsm = SoftHsm.withTokens([TOKEN], PIN);
    generateAesKey(DEFAULT_WRAPPING_KEY_LABEL, 16);
    generateAesKey(DUPLICATE_LABEL, 32);
    generateAesKey(DUPLICATE_LABEL, 32);
  });

  after(async () => {
    for (const server of servers) await server.stop();
    hsm?.remove();
    rmSync(folder, { recursive: true, force: true });
  });

  /** Starts a server on new storage with the PKCS#11 seal and `extraArgs`, and sends sys/init. */
  async function initWith(name: string, extraArgs: string[]) {
    const { pinFile } = writePinFiles(folder, PIN, "unused-pin-0000");
    const server = await startServerProcess(
      [
        "--log-level",
        "warn",
        "--data-dir",
        join(folder, name),
        "--seal-pkcs11-library",
        SOFTHSM_LIBRARY,
        "--seal-pkcs11-token-label",
        TOKEN,
        "--seal-pkcs11-pin-file",
        pinFile,
        ...extraArgs,
      ],
      hsm!.env,
    );
    servers.push(server);
    const init = await callServer(server.address, "PUT", "sys/init", {
      recovery_shares: 1,
      recovery_threshold: 1,
    });
    const status = await callServer(server.address, "GET", "sys/seal-status");
    return { init, status };
  }

  it("init rejects an AES-128 key", async (t: TestContext) => {
    if (!requireSoftHsm(t) || hsm === undefined) return;
    const { init, status } = await initWith("short-key", []);
    const body = JSON.stringify(init.body);
    assert.notEqual(init.status, 500, `an unusable HSM key is not an internal error: ${body}`);
    assert.equal(init.body.code, "hsm_key_not_found", body);
    assert.match(
      String(init.body.errors),
      /seal_pkcs11_key_label/,
      "the message names the setting",
    );
    assert.equal(status.body.initialized, false, "a failed init stores nothing");
  });

  it("init rejects two keys with the label", async (t: TestContext) => {
    if (!requireSoftHsm(t) || hsm === undefined) return;
    const { init, status } = await initWith("duplicate-key", [
      "--seal-pkcs11-key-label",
      DUPLICATE_LABEL,
    ]);
    const body = JSON.stringify(init.body);
    assert.notEqual(init.status, 500, `an ambiguous HSM key is not an internal error: ${body}`);
    assert.equal(init.body.code, "hsm_key_not_found", body);
    assert.match(String(init.body.errors), /2 AES keys labelled/, "the message names the problem");
    assert.equal(status.body.initialized, false, "a failed init stores nothing");
  });
});
