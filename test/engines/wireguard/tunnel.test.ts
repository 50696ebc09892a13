import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { PRIVATE_KEY_PLACEHOLDER } from "../../../src/engines/wireguard/index.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { createWireguardRouteFixture, ok, type WireguardRouteFixture } from "./fixtures.ts";
import { NamespacePair, run } from "./namespaces.ts";

/** Programs the test drives; `ping` comes from iputils-ping. */
const PROGRAMS = ["wg", "wireguard-go", "ip", "ping"];

/** Underlay and tunnel ranges from 198.18.0.0/15, which RFC 2544 reserves for tests. */
const UNDERLAY: [string, string] = ["198.18.0.1/30", "198.18.0.2/30"];
const TUNNEL_RANGE = "198.19.77.0/24";
const PORT = 51_820;

const isRoot = process.getuid?.() === 0;

/** Makes a key pair as an agent does: `wg genkey`, then `wg pubkey`. */
function endpointKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = run("wg", ["genkey"]).trim();
  return { privateKey, publicKey: run("wg", ["pubkey"], `${privateKey}\n`).trim() };
}

function requirePeers(t: TestContext): boolean {
  for (const program of PROGRAMS) if (!requirePeer(t, program)) return false;
  if (!isRoot) {
    t.skip("network namespaces need root");
    return false;
  }
  return true;
}

/**
 * Two peers in two network namespaces, each running wireguard-go with the
 * configuration Keyward renders for it: a ping crosses the tunnel, crosses
 * it again after a key rotation, and stops once a peer is deleted.
 */
describe("wireguard tunnel between namespaces", () => {
  const pair = new NamespacePair(`kwt${process.pid % 100_000}`);
  const keys = { alpha: endpointKeyPair(), bravo: endpointKeyPair() };
  const names = ["alpha", "bravo"] as const;
  const tunnelAddresses: string[] = [];
  let fixture: WireguardRouteFixture;
  const ready = PROGRAMS.every(hasProgram) && isRoot;

  /** Fetches each remaining peer's `wg` configuration, fills in its private key and loads it. */
  async function reload(peers: readonly ("alpha" | "bravo")[]): Promise<void> {
    for (const peer of peers) {
      const index = names.indexOf(peer) as 0 | 1;
      const rendered = await ok(
        fixture,
        "GET",
        `/v1/wireguard/networks/lab/peers/${peer}/config?format=wg`,
      );
      const config = String(rendered.config_text).replace(
        PRIVATE_KEY_PLACEHOLDER,
        keys[peer].privateKey,
      );
      pair.configure(index, config, rendered.addresses);
    }
  }

  before(async () => {
    if (!ready) return;
    fixture = await createWireguardRouteFixture();
    await pair.create(UNDERLAY);
    await ok(fixture, "POST", "/v1/wireguard/networks/lab", {
      address_ranges: TUNNEL_RANGE,
      listen_port: PORT,
    });
    for (const [index, peer] of names.entries()) {
      const created = await ok(fixture, "POST", `/v1/wireguard/networks/lab/peers/${peer}`, {
        public_key: keys[peer].publicKey,
        endpoint: `${UNDERLAY[index]?.split("/")[0]}:${PORT}`,
        device_id: `test-device-${peer}`,
      });
      tunnelAddresses.push(created.addresses[0]);
    }
  });

  after(async () => {
    pair.destroy();
    await fixture?.close();
  });

  it("pings across the tunnel", async (t) => {
    if (!requirePeers(t)) return;
    await reload(names);
    assert.equal(pair.publicKey(0), keys.alpha.publicKey);
    assert.equal(pair.publicKey(1), keys.bravo.publicKey);
    assert.ok(pair.ping(0, tunnelAddresses[1] as string), "alpha cannot reach bravo");
    assert.ok(pair.ping(1, tunnelAddresses[0] as string), "bravo cannot reach alpha");
  });

  it("pings again after key rotation", async (t) => {
    if (!requirePeers(t)) return;
    const before = await ok(fixture, "GET", "/v1/wireguard/networks/lab/peers/bravo");
    keys.alpha = endpointKeyPair();
    const rotated = await ok(fixture, "POST", "/v1/wireguard/networks/lab/peers/alpha/rotate", {
      public_key: keys.alpha.publicKey,
    });
    assert.equal(rotated.public_key, keys.alpha.publicKey);
    assert.equal(rotated.key_version, 2);
    const after = await ok(fixture, "GET", "/v1/wireguard/networks/lab/peers/bravo");
    assert.ok(after.config_version > before.config_version);

    await reload(names);
    assert.equal(pair.publicKey(0), keys.alpha.publicKey);
    assert.ok(pair.ping(0, tunnelAddresses[1] as string), "alpha cannot reach bravo");
    assert.ok(pair.ping(1, tunnelAddresses[0] as string), "bravo cannot reach alpha");
  });

  it("stops pinging once a peer is deleted", async (t) => {
    if (!requirePeers(t)) return;
    const deleted = await fixture.request({
      method: "DELETE",
      url: "/v1/wireguard/networks/lab/peers/bravo",
    });
    assert.equal(deleted.statusCode, 204, deleted.body);
    await reload(["alpha"]);
    assert.equal(pair.ping(0, tunnelAddresses[1] as string, 1), false);
    assert.equal(pair.ping(1, tunnelAddresses[0] as string, 1), false);
  });
});
