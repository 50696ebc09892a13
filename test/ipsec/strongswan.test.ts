import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";
import { hasProgram, requirePeer } from "../helpers/peers.ts";
import {
  normaliseSerial,
  requireStrongswan,
  StrongswanPair,
  strongswanMissing,
  throwawayCsr,
} from "./strongswan.ts";

const PROGRAMS = ["swanctl", "ip", "ping", "openssl"];
const isRoot = process.getuid?.() === 0;
const GATEWAY_IDS: [string, string] = ["gw-a.test", "gw-b.test"];

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

/**
 * Two strongSwan gateways in two network namespaces authenticate each
 * other over IKEv2 with certificates Keyward signs from CSRs made on each
 * gateway, so the private keys never leave them. ESP runs in user space
 * (kernel-libipsec). A ping between the addresses behind the gateways
 * travels through the tunnel, before and after one gateway renews its
 * certificate with a new key and reloads it with `swanctl --load-creds`.
 */
describe("strongSwan tunnel with Keyward certificates", () => {
  const ready = PROGRAMS.every(hasProgram) && isRoot && strongswanMissing() === undefined;
  const pair = new StrongswanPair(`ksw${process.pid % 100_000}`, GATEWAY_IDS);
  let keyward: TestApp | undefined;
  const serials: [string, string] = ["", ""];

  async function ok(method: "GET" | "POST", url: string, payload?: unknown) {
    const response = await keyward!.request({ method, url, payload: payload as object });
    assert.ok(
      response.statusCode < 300,
      `${method} ${url}: ${response.statusCode} ${response.body}`,
    );
    return response.body === "" ? undefined : response.json()?.data;
  }

  /** Makes a new key and CSR on gateway `index`, has Keyward sign it and installs the result. */
  async function renew(index: 0 | 1): Promise<string> {
    const csr = pair.makeCsr(index);
    const signed = await ok("POST", "/v1/pki/sign/ipsec", { csr, ttl: "24h" });
    pair.writeCredentials(index, { certificate: signed.certificate, ca: signed.issuing_ca });
    serials[index] = normaliseSerial(signed.serial_number);
    return serials[index];
  }

  before(async () => {
    if (!ready) return;
    keyward = await createTestApp();
    await ok("POST", "/v1/sys/mounts/pki", { type: "pki" });
    // RSA, because charon without its openssl plugin verifies RSA signatures only.
    await ok("POST", "/v1/pki/root/generate/internal", {
      common_name: "IPsec test CA",
      key_type: "rsa",
      key_bits: 2048,
      ttl: "48h",
    });
    await ok("POST", "/v1/pki/roles/ipsec", {
      allowed_domains: GATEWAY_IDS.join(","),
      allow_bare_domains: true,
      allow_subdomains: false,
      key_type: "rsa",
      key_bits: 2048,
      server_flag: true,
      client_flag: true,
    });
    await pair.start();
  });

  after(async () => {
    await pair.destroy();
    await keyward?.close();
  });

  it("routes nothing before the tunnel", (t) => {
    if (!requirePeers(t)) return;
    const attempts = 1;
    assert.equal(pair.ping(0, attempts), false, "the tunnel addresses answer without IPsec");
  });

  it("establishes IKEv2 with CSR-signed certificates", async (t) => {
    if (!requirePeers(t)) return;
    for (const index of [0, 1] as const) {
      await renew(index);
      pair.loadAll(index);
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

  it("keeps the tunnel after a renewal", async (t) => {
    if (!requirePeers(t)) return;
    const before = establishedIkeSa(pair.listSas(0));
    assert.ok(before !== undefined, "no IKE SA before the renewal");
    const oldSerial = serials[1];

    const newSerial = await renew(1);
    assert.notEqual(newSerial, oldSerial);
    pair.reloadCredentials(1);
    assert.deepEqual(
      pair.endEntitySerials(1, "gw-b.test"),
      [newSerial],
      "gateway b still holds its old certificate after --load-creds --clear",
    );

    // Reauthentication makes a new IKE SA, for which gateway b signs with
    // its new key and sends its new certificate.
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
      pair.endEntitySerials(0, "gw-b.test").includes(newSerial),
      `gateway a never received gateway b's new certificate\n${pair.log(0)}`,
    );
  });

  it("rejects a CSR for a name outside the role", async (t) => {
    if (!requirePeers(t)) return;
    const csr = throwawayCsr("gw-c.test");
    const response = await keyward!.request({
      method: "POST",
      url: "/v1/pki/sign/ipsec",
      payload: { csr },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.match(response.body, /gw-c\.test/);
  });
});
