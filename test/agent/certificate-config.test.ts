import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CertificateArtifactConfig } from "../../src/agent/certificate-config.ts";
import { parseAgentConfig } from "../../src/agent/config.ts";
import { isKeywardError } from "../../src/errors.ts";

function configWith(...artifacts: Record<string, unknown>[]): Record<string, unknown> {
  return {
    server: "https://127.0.0.1:8200",
    device: "gw-1",
    bootstrap_token: `kwb.${"A".repeat(43)}`,
    state_dir: "/var/lib/keyward-agent",
    artifacts,
  };
}

function certificate(change: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "certificate",
    name: "ike",
    key_path: "/etc/swanctl/private/gw.key",
    cert_path: "/etc/swanctl/x509/gw.crt",
    ...change,
  };
}

describe("certificate artifact config", () => {
  it("applies the defaults", () => {
    const config = parseAgentConfig(configWith(certificate()), "/etc/keyward");
    const entry = config.artifacts[0] as CertificateArtifactConfig;
    assert.equal(entry.kind, "certificate");
    assert.equal(entry.id, "certificate:ike");
    assert.equal(entry.path, "/etc/swanctl/x509/gw.crt");
    assert.equal(entry.keyPath, "/etc/swanctl/private/gw.key");
    assert.equal(entry.keyType, "ec-p256");
    assert.equal(entry.mode, 0o644);
    assert.equal(entry.keyMode, 0o600);
    assert.equal(entry.chainPath, undefined);
    assert.equal(entry.caPath, undefined);
  });

  it("resolves relative paths", () => {
    const config = parseAgentConfig(
      configWith(certificate({ ca_path: "ca.pem", key_type: "ed25519" })),
      "/etc/keyward",
    );
    const entry = config.artifacts[0] as CertificateArtifactConfig;
    assert.equal(entry.caPath, "/etc/keyward/ca.pem");
    assert.equal(entry.keyType, "ed25519");
  });

  const bad: [string, Record<string, unknown>[], string, string][] = [
    [
      "missing key_path",
      [certificate({ key_path: undefined })],
      "missing_field",
      "artifacts[0].key_path",
    ],
    [
      "missing cert_path",
      [certificate({ cert_path: undefined })],
      "missing_field",
      "artifacts[0].cert_path",
    ],
    [
      "unknown key type",
      [certificate({ key_type: "dsa" })],
      "invalid_field",
      "artifacts[0].key_type",
    ],
    ["unknown field", [certificate({ path: "/x" })], "unknown_field", "artifacts[0].path"],
    ["bad name", [certificate({ name: "-x" })], "invalid_field", "artifacts[0].name"],
    [
      "check without {path}",
      [certificate({ check: "true" })],
      "invalid_field",
      "artifacts[0].check",
    ],
    [
      "directory path",
      [certificate({ chain_path: "/etc/" })],
      "invalid_field",
      "artifacts[0].chain_path",
    ],
    [
      "key is the certificate",
      [certificate({ key_path: "/etc/swanctl/x509/gw.crt" })],
      "invalid_field",
      "artifacts[0].key_path",
    ],
    [
      "file of another artifact",
      [certificate(), { kind: "secret", name: "s", path: "/etc/swanctl/private/gw.key" }],
      "invalid_field",
      "artifacts[1].path",
    ],
    [
      "same certificate twice",
      [certificate(), certificate({ key_path: "/k2", cert_path: "/c2" })],
      "invalid_field",
      "artifacts[1].name",
    ],
  ];
  for (const [name, artifacts, code, field] of bad) {
    it(`rejects ${name}`, () => {
      const config = configWith(...artifacts);
      for (const artifact of artifacts) {
        for (const [key, value] of Object.entries(artifact))
          if (value === undefined) delete artifact[key];
      }
      assert.throws(
        () => parseAgentConfig(config, "/etc/keyward"),
        (error: unknown) => {
          assert.ok(isKeywardError(error));
          assert.equal(error.code, code);
          assert.equal(error.field, field);
          return true;
        },
      );
    });
  }
});
