import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { validateWifiFile } from "../../../src/agent/wifi-validation.ts";
import { derivePsk } from "../../../src/engines/wifi/passphrase.ts";
import { renderSupplicantBlock } from "../../../src/engines/wifi/render.ts";
import type { KeyRecord, NetworkRecord, SecurityMode } from "../../../src/engines/wifi/types.ts";
import { requirePeer } from "../../helpers/peers.ts";

const folder = mkdtempSync(join(tmpdir(), "kw-supplicant-"));
after(() => rmSync(folder, { recursive: true, force: true }));

function network(security: SecurityMode, ssid: Buffer): NetworkRecord {
  return {
    name: "home",
    ssidHex: ssid.toString("hex"),
    security,
    hidden: false,
    vlans: [],
    passphrasePolicy: { length: 24, charset: "printable" },
    rotationPeriodSeconds: 0,
    graceWindowSeconds: 0,
    accessPoints: { devices: [], groups: [] },
    version: 1,
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
  };
}

function key(passphrase: string): KeyRecord {
  return {
    name: "laptop",
    mac: "02:11:22:33:44:55",
    keyId: "laptop",
    saePasswordId: "laptop",
    credential: { passphrase, generation: 3, createdAt: "2026-01-01T00:00:00Z" },
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
  };
}

/** What wpa_supplicant read from a configuration: the values it printed, as bytes. */
interface Parsed {
  ok: boolean;
  output: string;
  ssid?: Buffer;
  psk?: Buffer;
  saePassword?: Buffer;
  saePasswordId?: Buffer;
}

/** Reads the bytes of a `<label> - hexdump_ascii(len=N):` dump, which prints 16 bytes a line. */
function asciiDump(output: string, label: string): Buffer | undefined {
  const lines = output.split("\n");
  const start = lines.findIndex((line) => line.startsWith(`${label} - hexdump_ascii(len=`));
  if (start < 0) return undefined;
  const length = Number(/len=(\d+)/.exec(lines[start] as string)?.[1]);
  const bytes: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (bytes.length >= length) break;
    const count = Math.min(16, length - bytes.length);
    bytes.push(...line.trim().split(/\s+/).slice(0, count));
  }
  return Buffer.from(bytes.join(""), "hex");
}

/** Reads the bytes of a `<label> - hexdump(len=N): xx xx ...` line. */
function hexDump(output: string, label: string): Buffer | undefined {
  const escaped = label.replace(/[()]/g, "\\$&");
  const match = new RegExp(`^${escaped} - hexdump\\(len=\\d+\\): ([0-9a-f ]+)$`, "m").exec(output);
  return match ? Buffer.from((match[1] as string).replace(/ /g, ""), "hex") : undefined;
}

/**
 * Has wpa_supplicant read `block` as its configuration. It needs no radio
 * for that: with `-D none` and an interface that does not exist it parses
 * the file, prints each value (`-dd -K` includes keys), and then exits
 * because the interface is missing.
 */
function parseWithSupplicant(block: string): Parsed {
  const config = join(folder, "station.conf");
  writeFileSync(config, block);
  const result = spawnSync(
    "wpa_supplicant",
    ["-dd", "-K", "-D", "none", "-i", "kwnone0", "-c", config],
    { timeout: 10_000, encoding: "utf8" },
  );
  const output = `${result.stdout}${result.stderr}`;
  const ok =
    !output.includes("Failed to read or parse configuration") && /^Priority group/m.test(output);
  return {
    ok,
    output,
    ssid: asciiDump(output, "ssid"),
    psk: hexDump(output, "PSK (from passphrase)") ?? hexDump(output, "PSK"),
    saePassword: asciiDump(output, "sae_password"),
    saePasswordId: asciiDump(output, "sae_password_id"),
  };
}

const SSIDS: [string, Buffer][] = [
  ["ASCII", Buffer.from("Office")],
  ["UTF-8", Buffer.from("Café ☕", "utf8")],
  ["with a quote and hash", Buffer.from('My "Net" #1')],
  ["not UTF-8", Buffer.from([0xff, 0x00, 0x41, 0xfe])],
];

const PASSPHRASES: [string, string][] = [
  ["alphanumeric", "Abcdefgh12345678"],
  ["with a hash", "pass#word 1234"],
  ["with quotes and hash", 'a"b#c"d12345'],
  ["with one quote", 'ends with "quote'],
  ["with backslashes", "back\\slash\\n%s"],
  ["with edge spaces", "  spaced out  "],
  ["every special", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{}~"],
];

describe("wpa_supplicant reads rendered blocks", () => {
  for (const security of ["wpa2-psk", "wpa3-sae", "wpa2-wpa3"] as const) {
    it(`parses ${security} blocks`, (t) => {
      if (!requirePeer(t, "wpa_supplicant")) return;
      for (const [ssidCase, ssid] of SSIDS) {
        for (const [passphraseCase, passphrase] of PASSPHRASES) {
          const label = `${security}, SSID ${ssidCase}, passphrase ${passphraseCase}`;
          const block = renderSupplicantBlock(network(security, ssid), key(passphrase));
          validateWifiFile("wpa_supplicant", block);
          const parsed = parseWithSupplicant(block);
          assert.ok(parsed.ok, `${label}: wpa_supplicant rejected the block:\n${parsed.output}`);
          assert.deepEqual(parsed.ssid, ssid, `${label}: SSID`);
          if (security !== "wpa3-sae") {
            assert.deepEqual(parsed.psk, derivePsk(passphrase, ssid), `${label}: PSK`);
          }
          if (security !== "wpa2-psk") {
            assert.deepEqual(parsed.saePassword, Buffer.from(passphrase), `${label}: SAE password`);
            assert.deepEqual(parsed.saePasswordId, Buffer.from("laptop.3"), `${label}: identifier`);
          }
        }
      }
    });
  }

  it("parses a raw PSK block", (t) => {
    if (!requirePeer(t, "wpa_supplicant")) return;
    const psk = "0123456789abcdef".repeat(4);
    const block = renderSupplicantBlock(network("wpa2-psk", Buffer.from("Office")), key(psk));
    validateWifiFile("wpa_supplicant", block);
    const parsed = parseWithSupplicant(block);
    assert.ok(parsed.ok, parsed.output);
    assert.deepEqual(parsed.psk, Buffer.from(psk, "hex"));
  });

  it("rejects a quote inside a quoted value", (t) => {
    if (!requirePeer(t, "wpa_supplicant")) return;
    const block =
      'network={\n\tssid="Office"\n\tkey_mgmt=SAE\n\tsae_password="a"b#c"d12345"\n\tieee80211w=2\n}\n';
    assert.throws(() => validateWifiFile("wpa_supplicant", block), /sae_password/);
    const parsed = parseWithSupplicant(block);
    assert.equal(parsed.ok, false, "wpa_supplicant accepted a block the agent rejects");
  });
});
