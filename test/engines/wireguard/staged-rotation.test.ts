import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import {
  effectiveView,
  generateKeyPair,
  type NetworkRecord,
  type PeerRecord,
  publicKeyOf,
} from "../../../src/engines/wireguard/index.ts";
import { createWireguardFixture, parseConfig, type WireguardFixture } from "./fixtures.ts";

const pub = () => generateKeyPair().publicKey;
const HOUR_MS = 3600 * 1000;

/** Returns the [Peer] sections of `peer`'s configuration, keyed by public key. */
async function peersIn(f: WireguardFixture, network: string, peer: string) {
  const rendered = await f.service.renderConfig(network, peer);
  const sections = parseConfig(rendered.config).filter((section) => section.section === "Peer");
  return new Map(sections.map((section) => [section.fields.get("PublicKey"), section.fields]));
}

async function versions(f: WireguardFixture, network: string, peers: readonly string[]) {
  const result: Record<string, number> = {};
  for (const peer of peers) {
    result[peer] = (await f.service.readPeer(network, peer)).configVersion;
  }
  return result;
}

function storedPeer(f: WireguardFixture, network: string, peer: string): PeerRecord {
  const value = f.barrier.values.get(`wireguard/peers/${network}/${peer}`);
  assert.ok(value, `peer ${peer} is not stored`);
  return JSON.parse(Buffer.from(value).toString("utf8")) as PeerRecord;
}

const MESH = ["alpha", "bravo", "charlie"] as const;

describe("wireguard staged rotation", () => {
  let f: WireguardFixture;
  const keys = { alpha: pub(), bravo: pub(), charlie: pub() };

  beforeEach(async () => {
    f = createWireguardFixture();
    await f.service.writeNetwork("office", {
      addressRanges: "10.20.0.0/24",
      rotationNotice: "1h",
    });
    for (const peer of MESH) await f.service.writePeer("office", peer, { publicKey: keys[peer] });
  });

  it("stages a new key of a keyed peer", async () => {
    const before = await versions(f, "office", MESH);
    const pskBefore = (await peersIn(f, "office", "bravo")).get(keys.alpha)?.get("PresharedKey");
    const next = pub();
    const rotated = await f.service.rotatePeer("office", "alpha", { publicKey: next });

    assert.equal(rotated.peer.publicKey, keys.alpha);
    assert.equal(rotated.peer.keyVersion, 1);
    assert.equal(rotated.peer.nextKey, next);
    assert.equal(rotated.peer.nextKeyVersion, 2);
    assert.equal(rotated.peer.nextKeyActivateAt, "2030-01-01T01:00:00.000Z");
    const bravo = await peersIn(f, "office", "bravo");
    assert.ok(bravo.has(keys.alpha));
    assert.ok(!bravo.has(next));
    assert.equal(bravo.get(keys.alpha)?.get("PresharedKey"), pskBefore);
    assert.deepEqual(await versions(f, "office", MESH), before);
  });

  it("renders the new key from its activation time", async () => {
    const next = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: next });
    const staged = await versions(f, "office", MESH);
    const pskBefore = (await peersIn(f, "office", "bravo")).get(keys.alpha)?.get("PresharedKey");

    f.clock.advance(HOUR_MS - 1);
    assert.ok((await peersIn(f, "office", "bravo")).has(keys.alpha));
    assert.deepEqual(await versions(f, "office", MESH), staged);

    f.clock.advance(1);
    const bravo = await peersIn(f, "office", "bravo");
    assert.ok(bravo.has(next));
    assert.ok(!bravo.has(keys.alpha));
    assert.notEqual(bravo.get(next)?.get("PresharedKey"), pskBefore);
    const active = await versions(f, "office", MESH);
    for (const peer of MESH) {
      assert.ok(active[peer]! > staged[peer]!, `${peer} version did not rise at activation`);
    }
    const alpha = await f.service.readPeer("office", "alpha");
    assert.equal(alpha.publicKey, next);
    assert.equal(alpha.keyVersion, 2);
    assert.equal(alpha.nextKey, null);
    assert.equal(alpha.nextKeyActivateAt, null);
  });

  it("raises versions above writes made while staged", async () => {
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    await f.service.writePeer("office", "bravo", { endpoint: "192.0.2.2:51820" });
    await f.service.writePeer("office", "charlie", { endpoint: "192.0.2.3:51820" });
    const before = await versions(f, "office", MESH);
    f.clock.advance(HOUR_MS);
    const after = await versions(f, "office", MESH);
    for (const peer of MESH) {
      assert.ok(after[peer]! > before[peer]!, `${peer} version did not rise at activation`);
    }
  });

  it("raises versions at each of two activations", async () => {
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    f.clock.advance(HOUR_MS / 2);
    await f.service.rotatePeer("office", "bravo", { publicKey: pub() });
    const staged = (await versions(f, "office", ["charlie"])).charlie!;
    f.clock.advance(HOUR_MS / 2);
    const first = (await versions(f, "office", ["charlie"])).charlie!;
    f.clock.advance(HOUR_MS / 2);
    const second = (await versions(f, "office", ["charlie"])).charlie!;
    assert.ok(first > staged);
    assert.ok(second > first);
  });

  it("stores the activation without changing versions", async () => {
    const next = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: next });
    f.clock.advance(2 * HOUR_MS);
    const viewed = await versions(f, "office", MESH);
    const config = (await f.service.renderConfig("office", "bravo")).config;
    assert.equal(storedPeer(f, "office", "alpha").publicKey, keys.alpha);

    assert.deepEqual(await f.service.activateStagedKeys(f.clock.now()), ["office/alpha"]);
    const stored = storedPeer(f, "office", "alpha");
    assert.equal(stored.publicKey, next);
    assert.equal(stored.next, undefined);
    assert.equal(stored.keyActivatedAt, "2030-01-01T01:00:00.000Z");
    assert.deepEqual(await versions(f, "office", MESH), viewed);
    assert.equal((await f.service.renderConfig("office", "bravo")).config, config);
    assert.deepEqual(await f.service.activateStagedKeys(f.clock.now()), []);
  });

  it("stores the activation on the next write", async () => {
    const next = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: next });
    f.clock.advance(HOUR_MS);
    const viewed = await versions(f, "office", MESH);
    await f.service.writeNetwork("office", { rotationPeriod: "720h" });
    assert.equal(storedPeer(f, "office", "alpha").publicKey, next);
    assert.deepEqual(await versions(f, "office", MESH), viewed);
  });

  it("replaces a staged key with a later one", async () => {
    const first = pub();
    const second = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: first });
    f.clock.advance(HOUR_MS / 2);
    const rotated = await f.service.rotatePeer("office", "alpha", { publicKey: second });
    assert.equal(rotated.peer.nextKey, second);
    assert.equal(rotated.peer.nextKeyVersion, 3);
    assert.equal(rotated.peer.nextKeyActivateAt, "2030-01-01T01:30:00.000Z");

    f.clock.advance(HOUR_MS / 2);
    assert.ok((await peersIn(f, "office", "bravo")).has(keys.alpha));
    f.clock.advance(HOUR_MS / 2);
    const bravo = await peersIn(f, "office", "bravo");
    assert.ok(bravo.has(second));
    assert.ok(!bravo.has(first));
    // The replaced key is no one's now, so another peer may register it.
    await f.service.writePeer("office", "delta", { publicKey: first });
  });

  it("accepts the staged key again unchanged", async () => {
    const next = pub();
    const staged = await f.service.rotatePeer("office", "alpha", { publicKey: next });
    const revision = (await f.service.readNetwork("office")).revision;
    f.clock.advance(60_000);
    const again = await f.service.rotatePeer("office", "alpha", { publicKey: next });
    assert.equal(again.peer.nextKeyActivateAt, staged.peer.nextKeyActivateAt);
    assert.equal(again.peer.nextKeyVersion, 2);
    assert.equal((await f.service.readNetwork("office")).revision, revision);
  });

  it("reserves staged keys against other peers", async () => {
    const next = pub();
    await f.service.rotatePeer("office", "alpha", { publicKey: next });
    await assert.rejects(f.service.writePeer("office", "delta", { publicKey: next }), {
      code: "already_exists",
      field: "public_key",
    });
    await assert.rejects(f.service.rotatePeer("office", "bravo", { publicKey: next }), {
      code: "already_exists",
      field: "public_key",
    });
  });

  it("activates a first key at once", async () => {
    await f.service.writePeer("office", "delta", { deviceId: "gw-4" });
    const key = pub();
    const rotated = await f.service.rotatePeer("office", "delta", { publicKey: key });
    assert.equal(rotated.peer.publicKey, key);
    assert.equal(rotated.peer.nextKey, null);
    assert.ok((await peersIn(f, "office", "alpha")).has(key));
  });

  it("stages server-made keys too", async () => {
    await f.service.writePeer("office", "printer", { generateKey: true });
    const rotated = await f.service.rotatePeer("office", "printer", {});
    assert.ok(rotated.privateKey);
    assert.equal(rotated.peer.nextKey, publicKeyOf(rotated.privateKey));
    assert.equal(rotated.peer.keySource, "server");
  });

  it("rotates at once without a notice", async () => {
    await f.service.writeNetwork("office", { rotationNotice: 0 });
    const next = pub();
    const rotated = await f.service.rotatePeer("office", "alpha", { publicKey: next });
    assert.equal(rotated.peer.publicKey, next);
    assert.equal(rotated.peer.nextKey, null);
    assert.equal((await f.service.readNetwork("office")).rotationNotice, 0);
  });

  it("drops a staged key with its peer", async () => {
    await f.service.rotatePeer("office", "alpha", { publicKey: pub() });
    await f.service.deletePeer("office", "alpha");
    f.clock.advance(HOUR_MS);
    assert.equal((await peersIn(f, "office", "bravo")).size, 1);
  });

  it("shows spokes the old hub key until activation", async () => {
    await f.service.writeNetwork("branches", {
      addressRanges: "10.40.0.0/24",
      topology: "hub-and-spoke",
      hub: "hub",
      rotationNotice: "10m",
    });
    const hubKey = pub();
    await f.service.writePeer("branches", "hub", { publicKey: hubKey });
    await f.service.writePeer("branches", "east", { publicKey: pub() });
    await f.service.writePeer("branches", "west", { publicKey: pub() });
    const before = await versions(f, "branches", ["hub", "east", "west"]);

    const next = pub();
    await f.service.rotatePeer("branches", "hub", { publicKey: next });
    assert.ok((await peersIn(f, "branches", "east")).has(hubKey));
    f.clock.advance(10 * 60_000);
    assert.ok((await peersIn(f, "branches", "east")).has(next));
    const after = await versions(f, "branches", ["hub", "east", "west"]);
    for (const peer of ["hub", "east", "west"]) {
      assert.ok(after[peer]! > before[peer]!, `${peer} version did not rise`);
    }

    // A spoke's staged key concerns the hub only.
    const westBefore = after.west!;
    await f.service.rotatePeer("branches", "east", { publicKey: pub() });
    f.clock.advance(10 * 60_000);
    assert.equal((await versions(f, "branches", ["west"])).west, westBefore);
  });
});

describe("wireguard effective view", () => {
  const network = (revision: number): NetworkRecord => ({
    name: "office",
    addressRanges: ["10.20.0.0/24"],
    listenPort: 51_820,
    dns: [],
    persistentKeepalive: 0,
    topology: "full-mesh",
    rotationPeriodSeconds: 0,
    rotationNoticeSeconds: 3600,
    createdAt: "2030-01-01T00:00:00.000Z",
    updatedAt: "2030-01-01T00:00:00.000Z",
    revision,
    settingsRevision: 1,
    membershipRevision: 1,
    allocations: {},
  });
  const peer = (name: string, activateAt?: string): PeerRecord => ({
    name,
    network: "office",
    id: `id-${name}`,
    publicKey: pub(),
    keySource: "endpoint",
    keyVersion: 1,
    keyCreatedAt: "2030-01-01T00:00:00.000Z",
    addresses: [],
    allowedIps: [],
    pskSecret: Buffer.alloc(32, 1).toString("base64"),
    revision: 2,
    createdAt: "2030-01-01T00:00:00.000Z",
    updatedAt: "2030-01-01T00:00:00.000Z",
    ...(activateAt
      ? {
          next: {
            publicKey: pub(),
            keySource: "endpoint" as const,
            keyVersion: 2,
            createdAt: "2030-01-01T00:00:00.000Z",
            activateAt,
            pskSecret: Buffer.alloc(32, 2).toString("base64"),
          },
        }
      : {}),
  });

  it("returns the records before activation", () => {
    const peers = [peer("alpha", "2030-01-01T01:00:00.000Z"), peer("bravo")];
    const record = network(9);
    const view = effectiveView(record, peers, new Date("2030-01-01T00:59:59.999Z"));
    assert.equal(view.network, record);
    assert.equal(view.peers, peers);
    assert.deepEqual(view.promoted, []);
  });

  it("numbers activations in time order", () => {
    const peers = [
      peer("alpha", "2030-01-01T02:00:00.000Z"),
      peer("bravo", "2030-01-01T01:00:00.000Z"),
      peer("charlie", "2030-01-01T03:00:00.000Z"),
    ];
    const view = effectiveView(network(9), peers, new Date("2030-01-01T02:00:00.000Z"));
    assert.equal(view.network.revision, 11);
    const [alpha, bravo, charlie] = view.peers;
    assert.equal(bravo?.revision, 10);
    assert.equal(alpha?.revision, 11);
    assert.equal(alpha?.publicKey, peers[0]?.next?.publicKey);
    assert.equal(alpha?.keyVersion, 2);
    assert.equal(alpha?.pskSecret, peers[0]?.next?.pskSecret);
    assert.equal(alpha?.next, undefined);
    assert.equal(charlie, peers[2]);
    assert.deepEqual(
      view.promoted.map((record) => record.name),
      ["alpha", "bravo"],
    );
    // The input records are left as they were.
    assert.ok(peers[0]?.next);
  });
});
