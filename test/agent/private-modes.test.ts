import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAgentConfig } from "../../src/agent/config.ts";
import { isKeywardError } from "../../src/errors.ts";

const TOKEN = `kwb.${"A".repeat(43)}`;

const ENTRIES: Record<string, Record<string, unknown>> = {
  wireguard: {
    kind: "wireguard",
    mount: "wireguard",
    network: "office",
    peer: "alpha",
    path: "/etc/wireguard/wg0.conf",
  },
  secret: { kind: "secret", name: "radius", path: "/etc/radius/secret" },
  wifi: {
    kind: "wifi",
    mount: "wifi",
    network: "office",
    file: "wpa_psk_file",
    path: "/etc/hostapd/psk",
  },
  certificate: {
    kind: "certificate",
    name: "ike",
    cert_path: "/etc/swanctl/x509/ike.crt",
    key_path: "/etc/swanctl/private/ike.key",
  },
};

function configWith(entry: Record<string, unknown>): Record<string, unknown> {
  return {
    server: "https://127.0.0.1:8200",
    device: "gw-1",
    bootstrap_token: TOKEN,
    state_dir: "/var/lib/keyward-agent",
    artifacts: [entry],
  };
}

function rejectedField(entry: Record<string, unknown>): string | undefined {
  try {
    parseAgentConfig(configWith(entry), "/etc/keyward");
    return undefined;
  } catch (error) {
    assert.ok(isKeywardError(error), `unexpected error ${error}`);
    assert.equal(error.code, "invalid_field");
    assert.match(error.message, /other users no access/);
    return error.field;
  }
}

describe("modes of files with secrets", () => {
  const worldReadable: [string, string, string][] = [
    ["wireguard", "mode", "0644"],
    ["secret", "mode", "0604"],
    ["wifi", "mode", "0601"],
    ["certificate", "key_mode", "0644"],
    ["certificate", "key_mode", "602"],
  ];
  for (const [kind, key, mode] of worldReadable) {
    it(`${kind} ${key} ${mode} rejected`, () => {
      const field = rejectedField({ ...ENTRIES[kind], [key]: mode });
      assert.ok(field?.includes(`artifacts[0].${key}`), `rejected as ${field}`);
    });
  }

  const allowed: [string, string, string][] = [
    ["wireguard", "mode", "0600"],
    ["secret", "mode", "0640"],
    ["wifi", "mode", "0400"],
    ["certificate", "key_mode", "0640"],
    ["certificate", "mode", "0644"],
  ];
  for (const [kind, key, mode] of allowed) {
    it(`${kind} ${key} ${mode} accepted`, () => {
      const config = parseAgentConfig(
        configWith({ ...ENTRIES[kind], [key]: mode }),
        "/etc/keyward",
      );
      const entry = config.artifacts[0] as unknown as Record<string, number>;
      assert.equal(entry[key === "key_mode" ? "keyMode" : "mode"], Number.parseInt(mode, 8));
    });
  }
});
