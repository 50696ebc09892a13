import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { KeywardAgent } from "../../src/agent/agent.ts";
import { type ArtifactConfig, parseAgentConfig } from "../../src/agent/config.ts";
import { encryptionJwk } from "../../src/agent/identity.ts";
import { type InstallContext, installArtifact } from "../../src/agent/install.ts";
import type { Artifact } from "../../src/agent/protocol.ts";
import { emptyState } from "../../src/agent/state.ts";
import { sealSecret } from "../../src/devices/sealed.ts";
import {
  createDeviceApp,
  type DeviceApp,
  ok,
  registerDevice,
  startTlsServer,
  type TlsServer,
} from "../devices/fixtures.ts";
import { requirePeer } from "../helpers/peers.ts";

const log = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
const SSID_HEX = Buffer.from("Office ☕", "utf8").toString("hex");
const LAPTOP_MAC = "02:11:22:33:44:55";

/**
 * Starts hostapd without a radio (`driver=none`) for two seconds with the
 * installed files: `wpa_psk_file` by path and the `sae_password` lines
 * appended to the base configuration, as an access point's reload command
 * does. Returns its exit status (null when it was still running) and output.
 */
function runHostapd(dir: string, pskPath: string, saePath: string) {
  const base = [
    "interface=kwagent0",
    "driver=none",
    `ctrl_interface=${join(dir, "hostapd-ctrl")}`,
    `ssid2=${SSID_HEX}`,
    "wpa=2",
    "wpa_key_mgmt=WPA-PSK SAE",
    "rsn_pairwise=CCMP",
    "ieee80211w=1",
    `wpa_psk_file=${pskPath}`,
    "",
  ].join("\n");
  const config = join(dir, "hostapd.conf");
  writeFileSync(config, base + readFileSync(saePath, "utf8"));
  const result = spawnSync("hostapd", ["-d", config], {
    timeout: 2000,
    // hostapd exits 0 on SIGTERM, which would look like an exit of its own; SIGKILL leaves the status null.
    killSignal: "SIGKILL",
    encoding: "utf8",
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("wifi artifacts in the agent", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let dir: string;
  let apConfig: ReturnType<typeof parseAgentConfig>;
  let stationConfig: ReturnType<typeof parseAgentConfig>;
  const paths = () => ({
    psk: join(dir, "hostapd/office.wpa_psk"),
    sae: join(dir, "hostapd/office.sae"),
    station: join(dir, "station/office.conf"),
    reloads: join(dir, "reloads"),
    rejectMarker: join(dir, "reject-check"),
  });

  async function runAgent(config: ReturnType<typeof parseAgentConfig>): Promise<boolean> {
    const agent = new KeywardAgent({ config, log });
    await agent.open();
    try {
      return await agent.runOnce();
    } finally {
      agent.close();
    }
  }

  async function keyPassphrase(key: string): Promise<string> {
    return (await ok(t, "GET", `/v1/wifi/networks/office/keys/${key}/onboarding`)).passphrase;
  }

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    dir = mkdtempSync(join(tmpdir(), "keyward-wifi-agent-"));
    for (const folder of ["ap-state", "station-state", "hostapd", "station"]) {
      mkdirSync(join(dir, folder), { recursive: true, mode: 0o700 });
    }
    writeFileSync(join(dir, "server-ca.pem"), server.caPem);
    await ok(t, "POST", "/v1/sys/mounts/wifi", { type: "wifi" }, 204);
    await ok(t, "POST", "/v1/wifi/networks/office", {
      ssid_hex: SSID_HEX,
      security: "wpa2-wpa3",
      vlans: [10],
      generate_passphrase: true,
      grace_window: "72h",
      access_point_groups: ["office-aps"],
    });
    await ok(t, "POST", "/v1/wifi/networks/office/keys/laptop", {
      mac: LAPTOP_MAC,
      vlan: 10,
      sae_password_id: "laptop",
      device_id: "laptop-7",
    });
    const apToken = await registerDevice(t, "ap-1", { groups: ["office-aps"] });
    const stationToken = await registerDevice(t, "laptop-7");
    const files = paths();
    apConfig = parseAgentConfig(
      {
        server: server.url,
        ca_file: "server-ca.pem",
        device: "ap-1",
        bootstrap_token: apToken,
        state_dir: "ap-state",
        artifacts: [
          {
            kind: "wifi",
            mount: "wifi",
            network: "office",
            file: "wpa_psk_file",
            path: files.psk,
            mode: "0600",
            // The test makes this check fail by creating the marker file.
            check: `test ! -e ${files.rejectMarker} && test -s {path}`,
            reload: `echo psk >> ${files.reloads}`,
          },
          {
            kind: "wifi",
            mount: "wifi",
            network: "office",
            file: "sae_password",
            path: files.sae,
            mode: "0600",
            reload: `echo sae >> ${files.reloads}`,
          },
        ],
      },
      dir,
    );
    stationConfig = parseAgentConfig(
      {
        server: server.url,
        ca_file: "server-ca.pem",
        device: "laptop-7",
        bootstrap_token: stationToken,
        state_dir: "station-state",
        artifacts: [
          {
            kind: "wifi",
            mount: "wifi",
            network: "office",
            key: "laptop",
            path: files.station,
          },
        ],
      },
      dir,
    );
  });

  after(async () => {
    await server.close();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("installs access point files hostapd loads", async (context) => {
    if (!requirePeer(context, "hostapd")) return;
    assert.equal(await runAgent(apConfig), true);
    const files = paths();
    const shared = (await ok(t, "GET", "/v1/wifi/networks/office/onboarding")).passphrase;
    const laptop = await keyPassphrase("laptop");
    const psk = readFileSync(files.psk, "utf8");
    assert.ok(psk.includes(`00:00:00:00:00:00 ${shared}\n`));
    assert.ok(psk.includes(`keyid=laptop vlanid=10 ${LAPTOP_MAC} ${laptop}\n`));
    const sae = readFileSync(files.sae, "utf8");
    assert.ok(sae.includes(`sae_password=${laptop}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.1\n`));
    assert.equal(readFileSync(files.reloads, "utf8"), "psk\nsae\n");

    const run = runHostapd(dir, files.psk, files.sae);
    assert.equal(run.status, null, run.output);
    assert.match(run.output, /AP-ENABLED/);

    const status = await ok(t, "GET", "/v1/devices/registry/ap-1/status");
    const entry = status.artifacts.find((item: { id: string }) => item.id === "wifi:wifi:office");
    assert.equal(entry.in_sync, true);
  });

  it("installs a station block", async () => {
    assert.equal(await runAgent(stationConfig), true);
    const block = readFileSync(paths().station, "utf8");
    const laptop = await keyPassphrase("laptop");
    assert.ok(block.startsWith("network={\n"));
    assert.ok(block.includes(`\tssid="Office ☕"\n`));
    assert.ok(block.includes(`\tsae_password="${laptop}"\n`));
    assert.ok(block.includes('\tsae_password_id="laptop.1"\n'));
  });

  it("installs both generations after a rotation", async (context) => {
    if (!requirePeer(context, "hostapd")) return;
    const old = await keyPassphrase("laptop");
    await ok(t, "POST", "/v1/wifi/networks/office/keys/laptop/rotate");
    const laptop = await keyPassphrase("laptop");
    assert.equal(await runAgent(apConfig), true);
    assert.equal(await runAgent(stationConfig), true);

    const files = paths();
    const psk = readFileSync(files.psk, "utf8");
    assert.ok(psk.includes(`${LAPTOP_MAC} ${old}\n`));
    assert.ok(psk.includes(`${LAPTOP_MAC} ${laptop}\n`));
    const sae = readFileSync(files.sae, "utf8");
    assert.ok(sae.includes(`sae_password=${old}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.1\n`));
    assert.ok(sae.includes(`sae_password=${laptop}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.2\n`));
    const block = readFileSync(files.station, "utf8");
    assert.ok(block.includes('\tsae_password_id="laptop.2"\n'));
    assert.ok(!block.includes(old));

    const run = runHostapd(dir, files.psk, files.sae);
    assert.equal(run.status, null, run.output);
    assert.match(run.output, /AP-ENABLED/);
  });

  it("keeps the old file when the check fails", async () => {
    const files = paths();
    const before = readFileSync(files.psk, "utf8");
    const reloads = readFileSync(files.reloads, "utf8");
    await ok(t, "POST", "/v1/wifi/networks/office/rotate");
    writeFileSync(files.rejectMarker, "");
    try {
      assert.equal(await runAgent(apConfig), false, "the round reports the failed install");
      assert.equal(readFileSync(files.psk, "utf8"), before, "the old wpa_psk_file stays");
      assert.equal(readFileSync(files.reloads, "utf8"), `${reloads}sae\n`, "no psk reload");
    } finally {
      rmSync(files.rejectMarker);
    }
    assert.equal(await runAgent(apConfig), true);
    assert.notEqual(readFileSync(files.psk, "utf8"), before);
  });
});

describe("wifi install validation", () => {
  const id = "wifi:wifi:office";
  const validPsk = "# Keyward\n00:00:00:00:00:00 Abcdefgh12345678\n";
  const validSae = "# Keyward\nsae_password=Abcdefgh12345678\n";

  function setup() {
    const dir = mkdtempSync(join(tmpdir(), "keyward-wifi-install-"));
    const encryptionKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const context: InstallContext = {
      state: emptyState(),
      keyring: { format: 1, peers: {} },
      encryptionKey,
      shell: "/bin/sh",
      now: () => Date.parse("2030-01-01T00:00:00Z"),
      saveState: async () => {},
    };
    return { dir, context, jwk: encryptionJwk(encryptionKey) };
  }

  function entry(dir: string, file: "wpa_psk_file" | "sae_password"): ArtifactConfig {
    return {
      kind: "wifi",
      id,
      mount: "wifi",
      network: "office",
      key: undefined,
      file,
      path: join(dir, file),
      mode: 0o600,
      uid: undefined,
      gid: undefined,
      check: undefined,
      reload: `echo ${file} >> ${join(dir, "reloads")}`,
      commandTimeoutMs: 10_000,
    } as ArtifactConfig;
  }

  async function artifact(
    jwk: ReturnType<typeof encryptionJwk>,
    version: number,
    psk: string,
    sae: string,
  ): Promise<Artifact> {
    return {
      id,
      kind: "wifi",
      version,
      fields: { mount: "wifi", network: "office", role: "access-point" },
      secrets: {
        wpa_psk_file: await sealSecret(jwk, { artifact: id, version, field: "wpa_psk_file" }, psk),
        sae_password: await sealSecret(jwk, { artifact: id, version, field: "sae_password" }, sae),
      },
      next: null,
    };
  }

  /** Corrupted files, and whether hostapd 2.10 rejects them too; the agent is stricter than hostapd. */
  const corruptions: [string, "wpa_psk_file" | "sae_password", string, boolean][] = [
    ["short MAC", "wpa_psk_file", "# Keyward\n00:00:00:00:00 Abcdefgh12345678\n", true],
    ["short passphrase", "wpa_psk_file", "# Keyward\n00:00:00:00:00:00 short\n", true],
    ["bad VLAN", "wpa_psk_file", `# Keyward\nvlanid=5000 ${LAPTOP_MAC} Abcdefgh12345678\n`, false],
    ["missing newline", "wpa_psk_file", "00:00:00:00:00:00 Abcdefgh12345678", false],
    ["unknown SAE option", "sae_password", "sae_password=Abcdefgh12345678|pk=x\n", false],
    ["not an SAE line", "sae_password", "wpa_passphrase=Abcdefgh12345678\n", false],
  ];

  for (const [label, file, corrupted, hostapdRejects] of corruptions) {
    it(`rejects ${label} and keeps the old file`, async (context) => {
      const { dir, context: install, jwk } = setup();
      try {
        const target = entry(dir, file);
        const first = await installArtifact(
          install,
          target,
          await artifact(jwk, 1, validPsk, validSae),
        );
        assert.deepEqual(first, { status: "installed", version: 1 });
        const bad = await artifact(
          jwk,
          2,
          file === "wpa_psk_file" ? corrupted : validPsk,
          file === "sae_password" ? corrupted : validSae,
        );
        const second = await installArtifact(install, target, bad);
        assert.equal(second.status, "failed");
        assert.match((second as { reason: string }).reason, new RegExp(`invalid Wi-Fi ${file}`));
        assert.ok(
          !(second as { reason: string }).reason.includes("Abcdefgh"),
          "no passphrase in the reason",
        );
        assert.equal(
          readFileSync(target.path, "utf8"),
          file === "wpa_psk_file" ? validPsk : validSae,
        );
        assert.equal(
          readFileSync(join(dir, "reloads"), "utf8"),
          `${file}\n`,
          "no reload after the rejection",
        );
        assert.equal(install.state.installed[target.path]?.version, 1);

        if (hostapdRejects && requirePeer(context, "hostapd")) {
          // hostapd rejects what the agent rejected, and still starts with the file that stayed.
          const saePath = join(dir, "sae");
          writeFileSync(saePath, validSae);
          const badPath = join(dir, "corrupted");
          writeFileSync(badPath, corrupted);
          const rejected = runHostapd(dir, badPath, saePath);
          assert.notEqual(rejected.status, null, "hostapd loaded a file the agent rejected");
          const kept = runHostapd(dir, target.path, saePath);
          assert.equal(kept.status, null, kept.output);
          assert.match(kept.output, /AP-ENABLED/);
        }
        assert.ok(existsSync(target.path));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
