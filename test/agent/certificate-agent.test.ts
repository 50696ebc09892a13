import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { KeywardAgent } from "../../src/agent/agent.ts";
import {
  CERTIFICATE_KEYRING_FILE,
  REJECTED_RETRY_MS,
} from "../../src/agent/certificate-artifacts.ts";
import { spkiOf } from "../../src/agent/certificate-keys.ts";
import { parseAgentConfig } from "../../src/agent/config.ts";
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

/** Returns true when the private key in `keyPath` belongs to the certificate in `certPath`. */
function keyMatches(keyPath: string, certPath: string): boolean {
  const key = createPrivateKey(readFileSync(keyPath));
  const certificate = new X509Certificate(readFileSync(certPath));
  return spkiOf(key) === spkiOf(certificate.publicKey);
}

function opensslVerify(caPath: string, chainPath: string, certPath: string) {
  return spawnSync("openssl", ["verify", "-CAfile", caPath, "-untrusted", chainPath, certPath], {
    encoding: "utf8",
  });
}

describe("certificate artifacts in the agent", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let dir: string;
  let clockOffset = 0;
  let config: ReturnType<typeof parseAgentConfig>;
  const files = () => ({
    key: join(dir, "swanctl/private/gw.key"),
    cert: join(dir, "swanctl/x509/gw.crt"),
    chain: join(dir, "swanctl/chain.pem"),
    ca: join(dir, "swanctl/x509ca/ca.crt"),
    reloads: join(dir, "reloads"),
  });

  const newAgent = async () => {
    const agent = new KeywardAgent({ config, log, now: () => Date.now() + clockOffset });
    await agent.open();
    return agent;
  };

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    dir = mkdtempSync(join(tmpdir(), "keyward-certificate-agent-"));
    for (const folder of ["state", "swanctl/private", "swanctl/x509", "swanctl/x509ca"]) {
      mkdirSync(join(dir, folder), { recursive: true, mode: 0o700 });
    }
    writeFileSync(join(dir, "server-ca.pem"), server.caPem);
    await ok(t, "POST", "/v1/pki/roles/ipsec", {
      allow_any_name: true,
      allow_ip_sans: true,
      key_type: "any",
      max_ttl: "720h",
    });
    await ok(t, "POST", "/v1/pki/roles/strict", {
      allowed_domains: ["other.example"],
      allow_subdomains: true,
      key_type: "any",
    });
    await ok(t, "POST", "/v1/devices/certificates/ike", {
      pki_mount: "pki",
      role: "ipsec",
      groups: ["gateways"],
      common_name: "{{device}}.vpn.example.net",
      alt_names: ["{{device}}.vpn.example.net", "192.0.2.1"],
      ttl: "1h",
    });
    const token = await registerDevice(t, "gw", { groups: ["gateways"] });
    const paths = files();
    config = parseAgentConfig(
      {
        server: server.url,
        ca_file: "server-ca.pem",
        device: "gw",
        bootstrap_token: token,
        state_dir: "state",
        artifacts: [
          {
            kind: "certificate",
            name: "ike",
            key_path: paths.key,
            cert_path: paths.cert,
            chain_path: paths.chain,
            ca_path: paths.ca,
            check: "openssl x509 -noout -in {path}",
            reload: `echo reloaded >> ${paths.reloads}`,
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

  it("makes a key and installs its certificate", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const agent = await newAgent();
    try {
      assert.equal(await agent.runOnce(), true);
    } finally {
      agent.close();
    }
    const paths = files();
    assert.ok(keyMatches(paths.key, paths.cert), "the key belongs to the certificate");
    const verified = opensslVerify(paths.ca, paths.chain, paths.cert);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    const certificate = new X509Certificate(readFileSync(paths.cert));
    assert.equal(certificate.subject, "CN=gw.vpn.example.net");
    assert.equal(certificate.subjectAltName, "DNS:gw.vpn.example.net, IP Address:192.0.2.1");
    assert.equal(statSync(paths.key).mode & 0o777, 0o600);
    assert.equal(statSync(paths.cert).mode & 0o777, 0o644);
    assert.equal(statSync(join(dir, "state", CERTIFICATE_KEYRING_FILE)).mode & 0o777, 0o600);
    assert.equal(readFileSync(paths.reloads, "utf8"), "reloaded\n");

    const status = await ok(t, "GET", "/v1/devices/registry/gw/status");
    const entry = status.artifacts.find((item: { id: string }) => item.id === "certificate:ike");
    assert.equal(entry.in_sync, true);
  });

  it("keeps key and certificate across a restart", async () => {
    const paths = files();
    const key = readFileSync(paths.key, "utf8");
    const cert = readFileSync(paths.cert, "utf8");
    const agent = await newAgent();
    try {
      assert.equal(await agent.runOnce(), true);
    } finally {
      agent.close();
    }
    assert.equal(readFileSync(paths.key, "utf8"), key);
    assert.equal(readFileSync(paths.cert, "utf8"), cert);
    assert.equal(readFileSync(paths.reloads, "utf8"), "reloaded\n", "no second reload");
  });

  it("keeps the old pair while a renewal is rejected", async () => {
    const paths = files();
    const key = readFileSync(paths.key, "utf8");
    const cert = readFileSync(paths.cert, "utf8");
    await ok(t, "POST", "/v1/devices/certificates/ike", { role: "strict" });
    // 41 minutes of a 60-minute certificate is past two thirds.
    clockOffset = 41 * 60_000;
    const agent = await newAgent();
    try {
      await agent.runOnce();
      assert.equal(readFileSync(paths.key, "utf8"), key, "the installed key stays");
      assert.equal(readFileSync(paths.cert, "utf8"), cert, "the installed certificate stays");
      const keyring = JSON.parse(
        readFileSync(join(dir, "state", CERTIFICATE_KEYRING_FILE), "utf8"),
      );
      assert.ok(keyring.certificates["certificate:ike"].pending, "a new key waits");

      await ok(t, "POST", "/v1/devices/certificates/ike", { role: "ipsec" });
      clockOffset += REJECTED_RETRY_MS;
      assert.equal(await agent.runOnce(), true);
    } finally {
      agent.close();
    }
    assert.notEqual(readFileSync(paths.key, "utf8"), key, "a new key is installed");
    assert.notEqual(readFileSync(paths.cert, "utf8"), cert);
    assert.ok(keyMatches(paths.key, paths.cert));
    const verified = opensslVerify(paths.ca, paths.chain, paths.cert);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    const keyring = JSON.parse(readFileSync(join(dir, "state", CERTIFICATE_KEYRING_FILE), "utf8"));
    assert.equal(keyring.certificates["certificate:ike"].pending, undefined);
  });

  it("requests a new certificate when the names change", async () => {
    const paths = files();
    const key = readFileSync(paths.key, "utf8");
    await ok(t, "POST", "/v1/devices/certificates/ike", {
      alt_names: ["{{device}}.vpn.example.net", "vpn.example.net"],
    });
    const agent = await newAgent();
    try {
      assert.equal(await agent.runOnce(), true);
    } finally {
      agent.close();
    }
    assert.notEqual(readFileSync(paths.key, "utf8"), key);
    assert.ok(keyMatches(paths.key, paths.cert));
    const certificate = new X509Certificate(readFileSync(paths.cert));
    assert.equal(certificate.subjectAltName, "DNS:gw.vpn.example.net, DNS:vpn.example.net");
  });

  it("installs a recreated assignment", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const paths = files();
    await ok(t, "DELETE", "/v1/devices/certificates/ike", undefined, 204);
    const first = await newAgent();
    try {
      await first.runOnce();
    } finally {
      first.close();
    }
    const saved = JSON.parse(readFileSync(join(dir, "state", "state.json"), "utf8"));
    assert.equal(saved.installed[paths.cert], undefined, "the withdrawn version is forgotten");
    assert.ok(statSync(paths.cert).isFile(), "the withdrawn certificate stays in place");

    await ok(t, "POST", "/v1/devices/certificates/ike", {
      pki_mount: "pki",
      role: "ipsec",
      groups: ["gateways"],
      common_name: "{{device}}.vpn.example.net",
      alt_names: ["{{device}}.vpn.example.net", "::ffff:10.0.0.1"],
      ttl: "1h",
    });
    const second = await newAgent();
    try {
      assert.equal(await second.runOnce(), true);
    } finally {
      second.close();
    }
    assert.ok(keyMatches(paths.key, paths.cert));
    const certificate = new X509Certificate(readFileSync(paths.cert));
    assert.equal(
      certificate.subjectAltName,
      "DNS:gw.vpn.example.net, IP Address:0:0:0:0:0:FFFF:A00:1",
    );
    const status = await ok(t, "GET", "/v1/devices/registry/gw/status");
    const entry = status.artifacts.find((item: { id: string }) => item.id === "certificate:ike");
    assert.equal(entry.in_sync, true);
  });
});
