import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { validateWifiFile } from "../../../src/agent/wifi-validation.ts";
import { writeKeyRecord } from "../../../src/engines/wifi/keys.ts";
import { MAX_WPA_PSK_LINE_LENGTH } from "../../../src/engines/wifi/psk-line-length.ts";
import { renderWpaPskFile } from "../../../src/engines/wifi/render.ts";
import type { NetworkRecord } from "../../../src/engines/wifi/types.ts";
import { KeywardError } from "../../../src/errors.ts";
import { createTestApp, type TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";

const folder = mkdtempSync(join(tmpdir(), "kw-wifi-line-"));
after(() => rmSync(folder, { recursive: true, force: true }));

/** Returns a WPA2 network whose generated passphrases have the maximum 63 characters. */
function network(): NetworkRecord {
  return {
    name: "long",
    ssidHex: Buffer.from("Long").toString("hex"),
    security: "wpa2-psk",
    hidden: false,
    vlans: [4094],
    passphrasePolicy: { length: 63, charset: "printable" },
    rotationPeriodSeconds: 0,
    graceWindowSeconds: 0,
    accessPoints: { devices: [], groups: [] },
    version: 1,
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
  };
}

/** Starts hostapd without a radio for two seconds; status null means it was still running. */
function runHostapd(pskFile: string) {
  const config = join(folder, "hostapd.conf");
  writeFileSync(
    config,
    [
      "interface=kwline0",
      "driver=none",
      `ctrl_interface=${join(folder, "ctrl")}`,
      "ssid=Long",
      "wpa=2",
      "wpa_key_mgmt=WPA-PSK",
      "rsn_pairwise=CCMP",
      `wpa_psk_file=${pskFile}`,
      "",
    ].join("\n"),
  );
  const result = spawnSync("hostapd", ["-d", config], {
    timeout: 2000,
    killSignal: "SIGKILL",
    encoding: "utf8",
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("Wi-Fi wpa_psk_file line length", () => {
  const now = new Date("2026-01-02T00:00:00Z");
  // keyid=<27> vlanid=4094 <MAC> <63> is exactly 127 characters.
  const longestKeyId = "k".repeat(27);

  it("rejects key whose line hostapd would split", () => {
    const record = network();
    assert.throws(
      () =>
        writeKeyRecord(
          record,
          [],
          "laptop",
          { mac: "02:11:22:33:44:55", keyId: `${longestKeyId}x`, vlan: 4094 },
          now,
        ),
      (error: unknown) =>
        error instanceof KeywardError && error.code === "invalid_field" && error.field === "key_id",
    );
  });

  it("hostapd loads the longest accepted line", (t) => {
    const record = network();
    const key = writeKeyRecord(
      record,
      [],
      "laptop",
      { mac: "02:11:22:33:44:55", keyId: longestKeyId, vlan: 4094 },
      now,
    );
    const file = renderWpaPskFile(record, [key]);
    const line = file.split("\n")[1] as string;
    assert.equal(line.length, MAX_WPA_PSK_LINE_LENGTH);
    // The agent installs the longest line and refuses one more character.
    validateWifiFile("wpa_psk_file", file);
    assert.throws(
      () => validateWifiFile("wpa_psk_file", file.replace(line, `${line.slice(0, -1)}xy`)),
      /longer than the 127 characters hostapd reads/,
    );
    if (!requirePeer(t, "hostapd")) return;
    const pskFile = join(folder, "wpa_psk");
    writeFileSync(pskFile, file);
    const run = runHostapd(pskFile);
    assert.equal(run.status, null, run.output);
    assert.match(run.output, /AP-ENABLED/);

    // One more character is what the key check prevents: hostapd rejects the file.
    writeFileSync(pskFile, file.replace(line, `${line.slice(0, -1)}xy`));
    const longer = runHostapd(pskFile);
    assert.notEqual(longer.status, null, "hostapd kept running with a 128-character line");
    assert.match(longer.output, /Invalid MAC address/);
  });
});

describe("Wi-Fi line length through the API", () => {
  let app: TestApp;

  before(async () => {
    app = await createTestApp();
    const mounted = await app.request({
      method: "POST",
      url: "/v1/sys/mounts/wifi",
      payload: { type: "wifi" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const created = await app.request({
      method: "POST",
      url: "/v1/wifi/networks/office",
      payload: {
        ssid: "Office",
        security: "wpa2-wpa3",
        vlans: [4094],
        passphrase_policy: { length: 40, charset: "alphanumeric" },
      },
    });
    assert.equal(created.statusCode, 200, created.body);
  });
  after(async () => app.close());

  it("rejects policy raise over limit", async () => {
    const url = "/v1/wifi/networks/office/keys/laptop";
    const response = await app.request({
      method: "POST",
      url,
      payload: { mac: "02:11:22:33:44:55", key_id: "k".repeat(31), vlan: 4094 },
    });
    // 6 + 31 + 12 + 1 + 17 + 1 + 40 = 108 characters: accepted.
    assert.equal(response.statusCode, 200, response.body);

    const before = await app.request({ method: "GET", url: "/v1/wifi/networks/office" });
    const raised = await app.request({
      method: "POST",
      url: "/v1/wifi/networks/office",
      payload: { passphrase_policy: { length: 63, charset: "alphanumeric" } },
    });
    assert.equal(raised.statusCode, 400, raised.body);
    assert.equal(raised.json().code, "invalid_field");
    assert.equal(raised.json().field, "passphrase_policy.length");
    const afterwards = await app.request({ method: "GET", url: "/v1/wifi/networks/office" });
    assert.deepEqual(
      afterwards.json().data,
      before.json().data,
      "a rejected write changes nothing",
    );
  });

  it("rejects vlan that makes the line too long", async () => {
    const network = await app.request({
      method: "POST",
      url: "/v1/wifi/networks/desk",
      payload: {
        ssid: "Desk",
        security: "wpa2-psk",
        vlans: [4094],
        passphrase_policy: { length: 60, charset: "alphanumeric" },
      },
    });
    assert.equal(network.statusCode, 200, network.body);

    const url = "/v1/wifi/networks/desk/keys/phone";
    // 6 + 31 + 1 + 17 + 1 + 60 = 116 characters without a VLAN, 128 with vlanid=4094.
    const created = await app.request({
      method: "POST",
      url,
      payload: { mac: "02:11:22:33:44:66", key_id: "p".repeat(31) },
    });
    assert.equal(created.statusCode, 200, created.body);

    const keyBefore = await app.request({ method: "GET", url });
    const moved = await app.request({ method: "POST", url, payload: { vlan: 4094 } });
    assert.equal(moved.statusCode, 400, moved.body);
    assert.equal(moved.json().code, "invalid_field");
    assert.equal(moved.json().field, "vlan");
    const keyAfter = await app.request({ method: "GET", url });
    assert.deepEqual(
      keyAfter.json().data,
      keyBefore.json().data,
      "a rejected write changes nothing",
    );
  });
});
