import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { validateWifiFile } from "../../../src/agent/wifi-validation.ts";
import { derivePsk } from "../../../src/engines/wifi/passphrase.ts";
import { renderSaePasswords, renderWpaPskFile } from "../../../src/engines/wifi/render.ts";
import type { KeyRecord, NetworkRecord } from "../../../src/engines/wifi/types.ts";
import { requirePeer } from "../../helpers/peers.ts";

const folder = mkdtempSync(join(tmpdir(), "kw-wifi-"));
after(() => rmSync(folder, { recursive: true, force: true }));

function network(overrides: Partial<NetworkRecord> = {}): NetworkRecord {
  return {
    name: "home",
    ssidHex: Buffer.from("Café ☕", "utf8").toString("hex"),
    security: "wpa2-wpa3",
    hidden: false,
    vlans: [10, 20],
    passphrasePolicy: { length: 24, charset: "alphanumeric" },
    rotationPeriodSeconds: 0,
    graceWindowSeconds: 3600,
    accessPoints: { devices: ["ap-1"], groups: [] },
    shared: { passphrase: "shared passphrase 1", generation: 1, createdAt: "2026-01-01T00:00:00Z" },
    version: 3,
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
    ...overrides,
  };
}

const keys: KeyRecord[] = [
  {
    name: "laptop",
    mac: "02:11:22:33:44:55",
    keyId: "laptop",
    vlan: 10,
    saePasswordId: "laptop",
    credential: {
      passphrase: "NewPassphrase2NewPassphrase2",
      generation: 2,
      createdAt: "2026-01-02T00:00:00Z",
      previous: { passphrase: "OldPassphrase1", generation: 1, expiresAt: "2026-01-02T01:00:00Z" },
    },
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-02T00:00:00Z",
  },
  {
    name: "phone",
    mac: "02:aa:bb:cc:dd:ee",
    keyId: "phone",
    credential: {
      passphrase: "P!ck-a-str0ng#one",
      generation: 1,
      createdAt: "2026-01-01T00:00:00Z",
    },
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
  },
];

/** Starts hostapd without a radio for two seconds. Returns its exit status (null when it was still running) and output. */
function runHostapd(ssidHex: string, pskFile: string, saeLines: string) {
  const config = join(folder, "hostapd.conf");
  writeFileSync(
    config,
    [
      "interface=kwtest0",
      "driver=none",
      `ctrl_interface=${join(folder, "ctrl")}`,
      `ssid2=${ssidHex}`,
      "wpa=2",
      "wpa_key_mgmt=WPA-PSK SAE",
      "rsn_pairwise=CCMP",
      "ieee80211w=1",
      `wpa_psk_file=${pskFile}`,
      saeLines,
    ].join("\n"),
  );
  const result = spawnSync("hostapd", ["-d", config], {
    timeout: 2000,
    // hostapd exits 0 on SIGTERM, which would look like an exit of its own, but SIGKILL leaves the status null.
    killSignal: "SIGKILL",
    encoding: "utf8",
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("Wi-Fi real peers", () => {
  it("PSK derivation matches wpa_passphrase", (t) => {
    if (!requirePeer(t, "wpa_passphrase")) return;
    const cases = [
      ["IEEE", "password"],
      ["Café ☕", "pässwörd ünïcode"],
      ["x".repeat(32), "~".repeat(63)],
      ["a b;c", "semi;colon,comma"],
    ];
    for (const [ssid, passphrase] of cases as [string, string][]) {
      const output = spawnSync("wpa_passphrase", [ssid, passphrase], { encoding: "utf8" }).stdout;
      const expected = /\n\tpsk=([0-9a-f]{64})/.exec(output)?.[1];
      assert.ok(expected, `wpa_passphrase printed no PSK for ${ssid}: ${output}`);
      assert.equal(derivePsk(passphrase, Buffer.from(ssid, "utf8")).toString("hex"), expected);
    }
  });

  it("PSK matches IEEE 802.11 test vector", () => {
    // Passphrase "password" and SSID "IEEE" are a widely published test vector, and wpa_passphrase prints the same PSK.
    assert.equal(
      derivePsk("password", Buffer.from("IEEE")).toString("hex"),
      "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e",
    );
  });

  it("hostapd accepts rendered files", (t) => {
    if (!requirePeer(t, "hostapd")) return;
    const record = network();
    const pskFile = join(folder, "wpa_psk");
    const psk = renderWpaPskFile(record, keys);
    const sae = renderSaePasswords(record, keys);
    validateWifiFile("wpa_psk_file", psk);
    validateWifiFile("sae_password", sae);
    writeFileSync(pskFile, psk);
    // The laptop is in its grace window, so its MAC has two lines.
    assert.equal(psk.split("\n").filter((line) => line.includes("02:11:22:33:44:55")).length, 2);
    assert.match(sae, /\|id=laptop\.2\n/);
    assert.match(sae, /\|id=laptop\.1\n/);
    const run = runHostapd(record.ssidHex, pskFile, sae);
    assert.equal(run.status, null, run.output);
    assert.match(run.output, /AP-ENABLED/);
  });

  it("hostapd and the agent reject a corrupted file", (t) => {
    if (!requirePeer(t, "hostapd")) return;
    const record = network();
    const pskFile = join(folder, "wpa_psk_bad");
    const corrupted = renderWpaPskFile(record, keys).replace("02:aa:bb:cc:dd:ee", "02:aa:bb:cc:dd");
    assert.throws(() => validateWifiFile("wpa_psk_file", corrupted), /line 5/);
    writeFileSync(pskFile, corrupted);
    const run = runHostapd(record.ssidHex, pskFile, renderSaePasswords(record, keys));
    assert.notEqual(run.status, null, "hostapd kept running with a corrupted wpa_psk_file");
    assert.notEqual(run.status, 0);
    assert.match(run.output, /line 5/);

    const shortPassphrase = renderWpaPskFile(record, keys).replace("P!ck-a-str0ng#one", "short");
    assert.throws(() => validateWifiFile("wpa_psk_file", shortPassphrase), /passphrase/);
    const badSae = `${renderSaePasswords(record, keys)}sae_password=x|mac=zz\n`;
    assert.throws(() => validateWifiFile("sae_password", badSae), /invalid option/);
  });

  it("hostapd and the agent limit keyid to 31", (t) => {
    if (!requirePeer(t, "hostapd")) return;
    const record = network();
    const sae = renderSaePasswords(record, []);
    for (const length of [31, 32]) {
      const withKeyId = [{ ...(keys[1] as KeyRecord), keyId: "k".repeat(length) }];
      const psk = renderWpaPskFile(record, withKeyId);
      const pskFile = join(folder, `wpa_psk_keyid_${length}`);
      writeFileSync(pskFile, psk);
      const run = runHostapd(record.ssidHex, pskFile, sae);
      if (length === 31) {
        validateWifiFile("wpa_psk_file", psk);
        assert.equal(run.status, null, run.output);
        assert.match(run.output, /AP-ENABLED/);
      } else {
        assert.throws(() => validateWifiFile("wpa_psk_file", psk), /keyid/);
        assert.notEqual(run.status, null, "hostapd kept running with a 32-character keyid");
        assert.match(run.output, /keyid too long/);
      }
    }
  });
});
