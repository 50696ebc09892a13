import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  eventually,
  makeDeviceKeys,
  ok,
  registerDevice,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

describe("device routes in the audit log", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let dir: string;
  let logPath: string;

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    dir = mkdtempSync(join(tmpdir(), "keyward-devices-audit-"));
    logPath = join(dir, "audit.log");
    await ok(
      t,
      "POST",
      "/v1/sys/audit/file",
      { type: "file", options: { file_path: logPath } },
      204,
    );
  });
  after(async () => {
    await server.close();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("logs no bootstrap token or secret", async () => {
    await ok(t, "POST", "/v1/devices/secrets/wifi", { devices: ["ap-1"] });
    const token = await registerDevice(t, "ap-1");
    const keys = await makeDeviceKeys("ap-1");
    const enrolled = await t.request({
      method: "POST",
      url: "/v1/devices/enroll",
      token: null,
      payload: { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey },
    });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const device = { certificatePem: enrolled.json().data.certificate, keys };
    const state = await deviceRequest(server, {
      method: "GET",
      path: "/v1/devices/self/state",
      device,
    });
    assert.equal(state.status, 200, state.body);
    const sealed = state.json().data.artifacts[0].secrets.value as string;

    // The file device writes in batches, so wait for the state request's response record.
    await eventually(
      () => readFileSync(logPath, "utf8").includes('"path":"devices/self/state"'),
      "the state request's audit record",
    );
    const log = readFileSync(logPath, "utf8");
    assert.ok(log.includes('"path":"devices/enroll"'), "the enrolment is audited");
    assert.equal(log.includes(token), false, "the bootstrap token is not in the log");
    assert.match(log, /"bootstrap_token":"hmac-sha256:[0-9a-f]{64}"/);
    assert.equal(log.includes(sealed), false, "the sealed value is not in the log");
  });
});
