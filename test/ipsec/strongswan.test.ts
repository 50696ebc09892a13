import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import {
  createDeviceApp,
  type DeviceApp,
  ok,
  registerDevice,
  startTlsServer,
  type TlsServer,
} from "../devices/fixtures.ts";
import { hasProgram, requirePeer } from "../helpers/peers.ts";
import { type AgentProcess, startAgent } from "./agent-process.ts";
import {
  normaliseSerial,
  requireStrongswan,
  StrongswanPair,
  strongswanMissing,
  throwawayCsr,
} from "./strongswan.ts";

const PROGRAMS = ["swanctl", "ip", "ping", "openssl"];
const isRoot = process.getuid?.() === 0;
const DEVICES = ["gw-a", "gw-b"] as const;
const GATEWAY_IDS: [string, string] = ["gw-a.test", "gw-b.test"];

/**
 * Lifetime of the first certificates. With `renew_fraction` 0.5 the
 * agents renew them about 30 s after issue, which leaves the first test
 * time to bring the tunnel up before any renewal starts.
 */
const FIRST_TTL = "60s";
const FIRST_RENEW_FRACTION = 0.5;

function requirePeers(t: TestContext): boolean {
  for (const program of PROGRAMS) if (!requirePeer(t, program)) return false;
  if (!requireStrongswan(t)) return false;
  if (!isRoot) {
    t.skip("network namespaces need root");
    return false;
  }
  return true;
}

/** Polls `check` every 250 ms until it returns a value other than undefined, or fails after `ms`. */
async function eventually<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Returns the unique id of the first established IKE SA in `swanctl --list-sas` output, or undefined. */
function establishedIkeSa(listing: string): string | undefined {
  return /^gateway: #(\d+), ESTABLISHED, IKEv2/m.exec(listing)?.[1];
}

/** Returns the packets counted on the inbound ESP SA in `swanctl --list-sas` output. */
function inboundPackets(listing: string): number {
  const match = /^\s+in\s+[0-9a-f]+,\s+\d+ bytes,\s+(\d+) packets/m.exec(listing);
  return match === null ? 0 : Number(match[1]);
}

/** Returns the normalised serial of the certificate in `path`, or undefined while there is none. */
function fileSerial(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return normaliseSerial(new X509Certificate(readFileSync(path)).serialNumber);
}

/** Returns true when the private key in `keyPath` belongs to the certificate in `certPath`. */
function keyMatches(keyPath: string, certPath: string): boolean {
  const spki = createPublicKey(createPrivateKey(readFileSync(keyPath))).export({
    type: "spki",
    format: "der",
  });
  const certificate = new X509Certificate(readFileSync(certPath));
  return spki.equals(certificate.publicKey.export({ type: "spki", format: "der" }));
}

/**
 * Two strongSwan gateways in two network namespaces authenticate each
 * other over IKEv2 with certificates that Keyward agents obtain. Each
 * agent runs as a `keyward agent` process and enrols with a bootstrap
 * token. It makes the gateway's key, sends a CSR over mutual TLS,
 * installs key, certificate and CA certificate in the gateway's swanctl
 * folders and loads them with `swanctl --load-creds --clear`. ESP runs in
 * user space (kernel-libipsec). A ping between the addresses behind the
 * gateways travels through the tunnel, before and after the agents renew
 * their certificates with new keys.
 */
describe("strongSwan tunnel with certificates from Keyward agents", () => {
  const ready = PROGRAMS.every(hasProgram) && isRoot && strongswanMissing() === undefined;
  const pair = new StrongswanPair(`ksw${process.pid % 100_000}`, GATEWAY_IDS);
  let keyward: DeviceApp | undefined;
  let server: TlsServer | undefined;
  const agents: AgentProcess[] = [];
  const serials: [string, string] = ["", ""];

  const agentLogs = () => agents.map((agent) => agent.output()).join("\n");

  /** Waits until gateway `index`'s agent has installed a certificate other than `previous` and charon has loaded only that one. */
  function installedCertificate(index: 0 | 1, previous: string): Promise<string> {
    const { id } = pair.gateways[index];
    return eventually(`the agent of ${id} to install and load a new certificate`, 90_000, () => {
      const serial = fileSerial(pair.certificatePath(index));
      if (serial === undefined || serial === previous) return undefined;
      const loaded = pair.endEntitySerials(index, id);
      return loaded.length === 1 && loaded[0] === serial ? serial : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${agentLogs()}\n${pair.log(index)}`);
    });
  }

  before(async () => {
    if (!ready) return;
    // The device registry signs identity certificates with the EC CA of mount `pki`.
    keyward = await createDeviceApp();
    server = await startTlsServer(keyward);
    // The gateway CA is RSA, because charon without its openssl plugin verifies RSA signatures only.
    await ok(keyward, "POST", "/v1/sys/mounts/pki-ipsec", { type: "pki" }, 204);
    await ok(keyward, "POST", "/v1/pki-ipsec/root/generate/internal", {
      common_name: "IPsec test CA",
      key_type: "rsa",
      key_bits: 2048,
      ttl: "48h",
    });
    await ok(keyward, "POST", "/v1/pki-ipsec/roles/gateways", {
      allowed_domains: GATEWAY_IDS.join(","),
      allow_bare_domains: true,
      allow_subdomains: false,
      key_type: "rsa",
      key_bits: 2048,
      server_flag: true,
      client_flag: true,
    });
    await ok(keyward, "POST", "/v1/devices/certificates/ike", {
      pki_mount: "pki-ipsec",
      role: "gateways",
      devices: [...DEVICES],
      common_name: "{{device}}.test",
      alt_names: ["{{device}}.test"],
      ttl: FIRST_TTL,
      renew_fraction: FIRST_RENEW_FRACTION,
    });

    await pair.start();
    for (const index of [0, 1] as const) {
      pair.loadConnections(index);
      const device = DEVICES[index];
      const token = await registerDevice(keyward, device);
      const folder = join(pair.folder(index), "agent");
      mkdirSync(folder, { mode: 0o700 });
      writeFileSync(join(folder, "server-ca.pem"), server.caPem);
      const config = {
        server: server.url,
        ca_file: join(folder, "server-ca.pem"),
        device,
        bootstrap_token: token,
        state_dir: join(folder, "state"),
        // The agent checks renew_after once per poll, so a short wait makes it renew on time.
        poll_wait: "2s",
        artifacts: [
          {
            kind: "certificate",
            name: "ike",
            key_type: "rsa-2048",
            key_path: pair.keyPath(index),
            cert_path: pair.certificatePath(index),
            ca_path: pair.caPath(index),
            mode: "0644",
            key_mode: "0600",
            reload: pair.reloadCommand(index),
          },
        ],
      };
      writeFileSync(join(folder, "agent.json"), JSON.stringify(config, null, 2));
      agents.push(startAgent(join(folder, "agent.json")));
    }
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await pair.destroy();
    await server?.close();
    await keyward?.close();
  });

  it("routes nothing before the tunnel", (t) => {
    if (!requirePeers(t)) return;
    const attempts = 1;
    assert.equal(pair.ping(0, attempts), false, "the tunnel addresses answer without IPsec");
  });

  it("establishes IKEv2 with agent certificates", async (t) => {
    if (!requirePeers(t)) return;
    for (const index of [0, 1] as const) serials[index] = await installedCertificate(index, "");
    // Certificates issued from now on last a day, so the renewal below happens once.
    await ok(keyward!, "POST", "/v1/devices/certificates/ike", { ttl: "24h" });

    const ca = await ok(keyward!, "GET", "/v1/pki-ipsec/cert/ca");
    for (const index of [0, 1] as const) {
      assert.ok(keyMatches(pair.keyPath(index), pair.certificatePath(index)));
      assert.equal(statSync(pair.keyPath(index)).mode & 0o777, 0o600);
      const certificate = new X509Certificate(readFileSync(pair.certificatePath(index)));
      assert.equal(certificate.subjectAltName, `DNS:${GATEWAY_IDS[index]}`);
      assert.equal(readFileSync(pair.caPath(index), "utf8").trim(), ca.certificate.trim());
    }

    const initiated = pair.swanctl(0, ["--initiate", "--child", "tunnel", "--timeout", "20"]);
    assert.equal(initiated.status, 0, `${initiated.output}\n${pair.log(0)}\n${pair.log(1)}`);

    const listing = pair.listSas(0);
    assert.ok(establishedIkeSa(listing) !== undefined, listing);
    assert.match(listing, /remote 'gw-b\.test'/);
    assert.match(listing, /tunnel: #\d+, reqid \d+, INSTALLED, TUNNEL/);
    assert.match(pair.listSas(1), /remote 'gw-a\.test'/);

    assert.equal(pair.ping(0), true, `no ping through the tunnel\n${listing}`);
    assert.ok(inboundPackets(pair.listSas(0)) > 0, "the ping did not travel over ESP");
    assert.ok(
      pair.endEntitySerials(0, "gw-b.test").includes(serials[1]),
      "gateway a did not receive gateway b's certificate",
    );
  });

  it("keeps the tunnel after the agents renew", async (t) => {
    if (!requirePeers(t)) return;
    const before = establishedIkeSa(pair.listSas(0));
    assert.ok(before !== undefined, "no IKE SA before the renewal");
    const oldSerials = [...serials];
    const oldKeys = [0, 1].map((index) => readFileSync(pair.keyPath(index as 0 | 1), "utf8"));

    for (const index of [0, 1] as const) {
      serials[index] = await installedCertificate(index, oldSerials[index] as string);
      assert.notEqual(readFileSync(pair.keyPath(index), "utf8"), oldKeys[index], "a new key");
      assert.ok(keyMatches(pair.keyPath(index), pair.certificatePath(index)));
    }
    assert.deepEqual(
      pair.endEntitySerials(1, "gw-b.test"),
      [serials[1]],
      "gateway b still holds its old certificate after --load-creds --clear",
    );
    assert.equal(establishedIkeSa(pair.listSas(0)), before, "loading credentials kept the IKE SA");

    // Reauthentication makes a new IKE SA, for which both gateways sign
    // with their new keys and send their new certificates.
    const rekeyed = pair.swanctl(0, ["--rekey", "--ike", "gateway", "--reauth"]);
    assert.equal(rekeyed.status, 0, `${rekeyed.output}\n${pair.log(0)}`);
    await eventually("a new IKE SA with an installed child SA", 20_000, () => {
      const listing = pair.listSas(0);
      const current = establishedIkeSa(listing);
      return current !== undefined && current !== before && /INSTALLED/.test(listing)
        ? current
        : undefined;
    });

    assert.equal(
      pair.ping(0),
      true,
      `no ping after the renewal\n${pair.listSas(0)}\n${pair.log(0)}`,
    );
    assert.equal(pair.ping(1), true, "no ping from gateway b after the renewal");
    assert.ok(inboundPackets(pair.listSas(0)) > 0, "the ping did not travel over the new ESP SA");
    assert.ok(
      pair.endEntitySerials(0, "gw-b.test").includes(serials[1]),
      `gateway a never received gateway b's new certificate\n${pair.log(0)}`,
    );
    assert.ok(
      pair.endEntitySerials(1, "gw-a.test").includes(serials[0]),
      `gateway b never received gateway a's new certificate\n${pair.log(1)}`,
    );
  });

  it("rejects a CSR for a name outside the role", async (t) => {
    if (!requirePeers(t)) return;
    const csr = throwawayCsr("gw-c.test");
    const response = await keyward!.request({
      method: "POST",
      url: "/v1/pki-ipsec/sign/gateways",
      payload: { csr },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.match(response.body, /gw-c\.test/);
  });
});
