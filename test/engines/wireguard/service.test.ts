import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { generateKeyPair, PRIVATE_KEY_PLACEHOLDER } from "../../../src/engines/wireguard/index.ts";
import { createWireguardFixture, parseConfig, type WireguardFixture } from "./fixtures.ts";

const pub = () => generateKeyPair().publicKey;

/** Returns the [Peer] sections of a rendered configuration, keyed by public key. */
async function peersIn(f: WireguardFixture, network: string, peer: string) {
  const rendered = await f.service.renderConfig(network, peer);
  const sections = parseConfig(rendered.config).filter((section) => section.section === "Peer");
  return new Map(sections.map((section) => [section.fields.get("PublicKey"), section.fields]));
}

describe("wireguard networks", () => {
  let f: WireguardFixture;
  beforeEach(() => {
    f = createWireguardFixture();
  });

  it("creates, updates and deletes", async () => {
    const created = await f.service.writeNetwork("office", {
      addressRanges: ["10.20.0.0/24", "fd00:20::/64"],
      dns: "10.20.0.1, corp.example",
    });
    assert.deepEqual(created.addressRanges, ["10.20.0.0/24", "fd00:20::/64"]);
    assert.equal(created.listenPort, 51_820);
    assert.equal(created.topology, "full-mesh");
    const updated = await f.service.writeNetwork("office", { mtu: 1380, persistentKeepalive: 25 });
    assert.equal(updated.mtu, 1380);
    assert.deepEqual(updated.dns, ["10.20.0.1", "corp.example"]);
    assert.deepEqual(await f.service.listNetworks(), ["office"]);
    await f.service.deleteNetwork("office");
    await assert.rejects(f.service.readNetwork("office"), { code: "not_found" });
  });

  it("rejects overlapping ranges", async () => {
    await f.service.writeNetwork("office", { addressRanges: "10.20.0.0/16" });
    await assert.rejects(f.service.writeNetwork("lab", { addressRanges: "10.20.5.0/24" }), {
      code: "address_conflict",
      field: "address_ranges",
    });
    await f.service.writeNetwork("lab", { addressRanges: "10.21.0.0/24" });
  });

  it("keeps ranges while peers exist", async () => {
    await f.service.writeNetwork("office", { addressRanges: "10.20.0.0/24" });
    await f.service.writePeer("office", "alpha", { publicKey: pub() });
    await assert.rejects(f.service.writeNetwork("office", { addressRanges: "10.30.0.0/24" }), {
      code: "invalid_state",
      field: "address_ranges",
    });
  });

  it("requires a hub for hub-and-spoke", async () => {
    await assert.rejects(
      f.service.writeNetwork("office", {
        addressRanges: "10.20.0.0/24",
        topology: "hub-and-spoke",
      }),
      { code: "missing_field", field: "hub" },
    );
  });

  it("deletes its peers with it", async () => {
    await f.service.writeNetwork("office", { addressRanges: "10.20.0.0/24" });
    await f.service.writePeer("office", "alpha", { publicKey: pub() });
    await f.service.deleteNetwork("office");
    assert.deepEqual(
      [...f.barrier.values.keys()].filter((key) => key.startsWith("wireguard/")),
      [],
    );
  });
});

describe("wireguard peers", () => {
  let f: WireguardFixture;
  beforeEach(async () => {
    f = createWireguardFixture();
    await f.service.writeNetwork("office", {
      addressRanges: ["10.20.0.0/24", "fd00:20::/64"],
      persistentKeepalive: 25,
    });
  });

  it("allocates lowest free addresses", async () => {
    const alpha = await f.service.writePeer("office", "alpha", { publicKey: pub() });
    const bravo = await f.service.writePeer("office", "bravo", { publicKey: pub() });
    assert.deepEqual(alpha.peer.addresses, ["10.20.0.1", "fd00:20::1"]);
    assert.deepEqual(bravo.peer.addresses, ["10.20.0.2", "fd00:20::2"]);
    await f.service.deletePeer("office", "alpha");
    const charlie = await f.service.writePeer("office", "charlie", { publicKey: pub() });
    assert.deepEqual(charlie.peer.addresses, ["10.20.0.1", "fd00:20::1"]);
    const bravoAgain = await f.service.readPeer("office", "bravo");
    assert.deepEqual(bravoAgain.addresses, ["10.20.0.2", "fd00:20::2"]);
  });

  it("accepts a free explicit address", async () => {
    const alpha = await f.service.writePeer("office", "alpha", {
      publicKey: pub(),
      addresses: ["10.20.0.50/32", "fd00:20::50"],
    });
    assert.deepEqual(alpha.peer.addresses, ["10.20.0.50", "fd00:20::50"]);
    await assert.rejects(
      f.service.writePeer("office", "bravo", { publicKey: pub(), addresses: "10.20.0.50" }),
      { code: "address_conflict", field: "addresses" },
    );
    await assert.rejects(
      f.service.writePeer("office", "bravo", { publicKey: pub(), addresses: "10.21.0.5" }),
      { code: "invalid_field", field: "addresses" },
    );
    await assert.rejects(
      f.service.writePeer("office", "bravo", { publicKey: pub(), addresses: "10.20.0.255" }),
      { code: "invalid_field", field: "addresses" },
    );
  });

  it("reports a full range", async () => {
    await f.service.writeNetwork("tiny", { addressRanges: "10.30.0.0/30" });
    await f.service.writePeer("tiny", "a", { publicKey: pub() });
    await f.service.writePeer("tiny", "b", { publicKey: pub() });
    await assert.rejects(f.service.writePeer("tiny", "c", { publicKey: pub() }), {
      code: "address_conflict",
      field: "addresses",
    });
  });

  it("returns a generated key once", async () => {
    const created = await f.service.writePeer("office", "printer", { generateKey: true });
    assert.ok(created.privateKey);
    assert.equal(created.peer.keySource, "server");
    const read = await f.service.readPeer("office", "printer");
    assert.ok(!JSON.stringify(read).includes(created.privateKey));
    for (const value of f.barrier.values.values()) {
      assert.ok(!Buffer.from(value).toString("utf8").includes(created.privateKey));
    }
    const logged = JSON.stringify(f.logger.entries);
    assert.ok(!logged.includes(created.privateKey));
  });

  it("rejects a key used by another peer", async () => {
    const key = pub();
    await f.service.writePeer("office", "alpha", { publicKey: key });
    await assert.rejects(f.service.writePeer("office", "bravo", { publicKey: key }), {
      code: "already_exists",
      field: "public_key",
    });
  });

  it("changes keys only through rotation", async () => {
    await f.service.writePeer("office", "alpha", { publicKey: pub() });
    await assert.rejects(f.service.writePeer("office", "alpha", { publicKey: pub() }), {
      code: "invalid_state",
      field: "public_key",
    });
    const updated = await f.service.writePeer("office", "alpha", {
      endpoint: "vpn.example.com:51820",
    });
    assert.equal(updated.peer.endpoint, "vpn.example.com:51820");
  });

  it("rejects routes inside the range", async () => {
    await assert.rejects(
      f.service.writePeer("office", "alpha", { publicKey: pub(), allowedIps: "10.20.0.128/25" }),
      { code: "invalid_field", field: "allowed_ips" },
    );
    await f.service.writePeer("office", "exit", { publicKey: pub(), allowedIps: "0.0.0.0/0" });
    await assert.rejects(
      f.service.writePeer("office", "bravo", { publicKey: pub(), allowedIps: "0.0.0.0/0" }),
      { code: "address_conflict", field: "allowed_ips" },
    );
  });

  it("binds peers to devices", async () => {
    await f.service.writePeer("office", "alpha", { publicKey: pub(), deviceId: "gw-1" });
    await f.service.writePeer("office", "bravo", { publicKey: pub(), deviceId: "gw-2" });
    assert.deepEqual(await f.service.peersOfDevice("gw-1"), [{ network: "office", peer: "alpha" }]);
  });

  it("leaves state unchanged on failed writes", async () => {
    await f.service.writePeer("office", "alpha", { publicKey: pub() });
    const before = await f.service.readNetwork("office");
    f.barrier.failWrites = true;
    await assert.rejects(f.service.writePeer("office", "bravo", { publicKey: pub() }), {
      code: "storage_failure",
    });
    await assert.rejects(f.service.rotatePeer("office", "alpha", { publicKey: pub() }), {
      code: "storage_failure",
    });
    f.barrier.failWrites = false;
    assert.deepEqual(await f.service.readNetwork("office"), before);
    assert.deepEqual(await f.service.listPeers("office"), ["alpha"]);
    assert.equal((await f.service.readPeer("office", "alpha")).keyVersion, 1);
    const bravo = await f.service.writePeer("office", "bravo", { publicKey: pub() });
    assert.deepEqual(bravo.peer.addresses, ["10.20.0.2", "fd00:20::2"]);
  });
});

describe("wireguard configurations", () => {
  let f: WireguardFixture;
  const keys = { alpha: pub(), bravo: pub(), charlie: pub() };
  beforeEach(async () => {
    f = createWireguardFixture();
    await f.service.writeNetwork("office", {
      addressRanges: "10.20.0.0/24",
      dns: "10.20.0.1",
      mtu: 1420,
      persistentKeepalive: 25,
    });
    await f.service.writePeer("office", "alpha", {
      publicKey: keys.alpha,
      endpoint: "192.0.2.1:51820",
    });
    await f.service.writePeer("office", "bravo", {
      publicKey: keys.bravo,
      endpoint: "[2001:db8::2]:51821",
      allowedIps: "192.168.50.0/24",
    });
    await f.service.writePeer("office", "charlie", { publicKey: keys.charlie });
  });

  it("renders the wg-quick interface", async () => {
    const rendered = await f.service.renderConfig("office", "alpha");
    const [face] = parseConfig(rendered.config);
    assert.equal(face?.section, "Interface");
    assert.equal(face?.fields.get("PrivateKey"), PRIVATE_KEY_PLACEHOLDER);
    assert.equal(face?.fields.get("Address"), "10.20.0.1/24");
    assert.equal(face?.fields.get("ListenPort"), "51820");
    assert.equal(face?.fields.get("DNS"), "10.20.0.1");
    assert.equal(face?.fields.get("MTU"), "1420");
    assert.deepEqual(rendered.addresses, ["10.20.0.1/24"]);
    assert.ok(!rendered.config.includes("PostUp"));
  });

  it("renders every mesh peer", async () => {
    const peers = await peersIn(f, "office", "alpha");
    assert.deepEqual([...peers.keys()].sort(), [keys.bravo, keys.charlie].sort());
    const bravo = peers.get(keys.bravo);
    assert.equal(bravo?.get("AllowedIPs"), "10.20.0.2/32, 192.168.50.0/24");
    assert.equal(bravo?.get("Endpoint"), "[2001:db8::2]:51821");
    assert.equal(bravo?.get("PersistentKeepalive"), "25");
    assert.match(bravo?.get("PresharedKey") ?? "", /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(peers.get(keys.charlie)?.has("Endpoint"), false);
  });

  it("renders the wg setconf subset", async () => {
    const rendered = await f.service.renderConfig("office", "alpha", "wg");
    const [face] = parseConfig(rendered.config);
    assert.deepEqual([...(face?.fields.keys() ?? [])], ["PrivateKey", "ListenPort"]);
  });

  it("shares one preshared key per pair", async () => {
    const fromAlpha = await peersIn(f, "office", "alpha");
    const fromBravo = await peersIn(f, "office", "bravo");
    const fromCharlie = await peersIn(f, "office", "charlie");
    const alphaBravo = fromAlpha.get(keys.bravo)?.get("PresharedKey");
    assert.equal(alphaBravo, fromBravo.get(keys.alpha)?.get("PresharedKey"));
    assert.notEqual(alphaBravo, fromAlpha.get(keys.charlie)?.get("PresharedKey"));
    assert.notEqual(alphaBravo, fromCharlie.get(keys.bravo)?.get("PresharedKey"));
  });

  it("rotates preshared keys with the key", async () => {
    const before = await peersIn(f, "office", "charlie");
    const newAlpha = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: newAlpha });
    const after = await peersIn(f, "office", "charlie");
    assert.equal(after.has(keys.alpha), false);
    assert.notEqual(
      after.get(newAlpha)?.get("PresharedKey"),
      before.get(keys.alpha)?.get("PresharedKey"),
    );
    assert.equal(
      after.get(keys.bravo)?.get("PresharedKey"),
      before.get(keys.bravo)?.get("PresharedKey"),
    );
  });

  it("bumps every mesh version on rotation", async () => {
    const before = await Promise.all(
      ["alpha", "bravo", "charlie"].map((peer) => f.service.readPeer("office", peer)),
    );
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    for (const old of before) {
      const now = await f.service.readPeer("office", old.name);
      assert.ok(now.configVersion > old.configVersion, `${old.name} version did not rise`);
    }
  });

  it("requires a new key to rotate", async () => {
    await assert.rejects(f.service.rotatePeer("office", "alpha", {}), {
      code: "missing_field",
      field: "public_key",
    });
    await assert.rejects(f.service.rotatePeer("office", "alpha", { publicKey: keys.alpha }), {
      code: "invalid_field",
      field: "public_key",
    });
  });

  it("generates keys for server-keyed peers", async () => {
    const created = await f.service.writePeer("office", "printer", { generateKey: true });
    const rotated = await f.service.rotatePeer("office", "printer", {});
    assert.ok(rotated.privateKey);
    assert.notEqual(rotated.privateKey, created.privateKey);
    assert.equal(rotated.peer.keyVersion, 2);
  });

  it("drops deleted peers everywhere", async () => {
    await f.service.deletePeer("office", "bravo");
    for (const peer of ["alpha", "charlie"]) {
      const rendered = await f.service.renderConfig("office", peer);
      assert.ok(!rendered.config.includes(keys.bravo), `${peer} still lists bravo`);
    }
    await assert.rejects(f.service.renderConfig("office", "bravo"), { code: "not_found" });
  });

  it("leaves pending peers out", async () => {
    await f.service.writePeer("office", "delta", { deviceId: "gw-4" });
    assert.equal((await f.service.readPeer("office", "delta")).keyState, "pending");
    assert.equal((await peersIn(f, "office", "alpha")).size, 2);
    const key = pub();
    await f.service.rotatePeer("office", "delta", { publicKey: key });
    assert.ok((await peersIn(f, "office", "alpha")).has(key));
  });

  it("marks rotation due on schedule", async () => {
    await f.service.writeNetwork("office", { rotationPeriod: "720h" });
    const fresh = await f.service.readPeer("office", "alpha");
    assert.equal(fresh.rotationDue, false);
    assert.equal(fresh.rotationDueAt, "2030-01-31T00:00:00.000Z");
    f.clock.advance(720 * 3600 * 1000);
    assert.equal((await f.service.readPeer("office", "alpha")).rotationDue, true);
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    assert.equal((await f.service.readPeer("office", "alpha")).rotationDue, false);
  });

  it("logs no key material", async () => {
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    const config = (await f.service.renderConfig("office", "bravo")).config;
    const psk = parseConfig(config)
      .find((s) => s.section === "Peer")
      ?.fields.get("PresharedKey");
    assert.ok(psk);
    assert.ok(!JSON.stringify(f.logger.entries).includes(psk));
  });
});

describe("wireguard hub and spoke", () => {
  let f: WireguardFixture;
  const keys = { hub: pub(), east: pub(), west: pub() };
  beforeEach(async () => {
    f = createWireguardFixture();
    await f.service.writeNetwork("branches", {
      addressRanges: "10.40.0.0/24",
      topology: "hub-and-spoke",
      hub: "hub",
    });
    await f.service.writePeer("branches", "hub", {
      publicKey: keys.hub,
      endpoint: "198.51.100.1:51820",
      allowedIps: "172.16.0.0/16",
    });
    await f.service.writePeer("branches", "east", { publicKey: keys.east });
    await f.service.writePeer("branches", "west", { publicKey: keys.west });
  });

  it("gives spokes only the hub", async () => {
    const peers = await peersIn(f, "branches", "east");
    assert.deepEqual([...peers.keys()], [keys.hub]);
    assert.equal(peers.get(keys.hub)?.get("AllowedIPs"), "10.40.0.0/24, 172.16.0.0/16");
  });

  it("gives the hub every spoke", async () => {
    const peers = await peersIn(f, "branches", "hub");
    assert.deepEqual([...peers.keys()].sort(), [keys.east, keys.west].sort());
    assert.equal(peers.get(keys.east)?.get("AllowedIPs"), "10.40.0.2/32");
  });

  it("bumps only affected versions", async () => {
    const hub = await f.service.readPeer("branches", "hub");
    const west = await f.service.readPeer("branches", "west");
    await f.service.rotatePeer("branches", "east", { publicKey: pub() });
    assert.ok((await f.service.readPeer("branches", "hub")).configVersion > hub.configVersion);
    assert.equal((await f.service.readPeer("branches", "west")).configVersion, west.configVersion);
    await f.service.rotatePeer("branches", "hub", { publicKey: pub() });
    assert.ok((await f.service.readPeer("branches", "west")).configVersion > west.configVersion);
  });

  it("raises spoke versions when the hub leaves", async () => {
    const west = await f.service.readPeer("branches", "west");
    await f.service.deletePeer("branches", "hub");
    const after = await f.service.readPeer("branches", "west");
    assert.ok(after.configVersion > west.configVersion);
    assert.equal((await peersIn(f, "branches", "west")).size, 0);
  });
});
