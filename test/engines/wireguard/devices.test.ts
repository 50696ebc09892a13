import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { DeviceArtifact, DeviceChangeNotifier } from "../../../src/devices/artifacts.ts";
import { ActivationTimers } from "../../../src/engines/wireguard/activation-timers.ts";
import {
  generateKeyPair,
  WireguardDeviceSource,
  WireguardService,
} from "../../../src/engines/wireguard/index.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { FixedClock, parseConfig, RecordingLogger } from "./fixtures.ts";

const pub = () => generateKeyPair().publicKey;
const HOUR_MS = 3600 * 1000;
const device = (name: string) => ({ name, id: `id-${name}`, groups: [], tags: {} });

/** Records every notification and resolves waiters whose device is named. */
class RecordingNotifier implements DeviceChangeNotifier {
  readonly calls: string[][] = [];
  #waiters: { device: string; after: number; resolve: () => void }[] = [];

  changed(deviceNames: readonly string[]): void {
    this.calls.push([...deviceNames].sort());
    const index = this.calls.length;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (index <= waiter.after || !deviceNames.includes(waiter.device)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves at the first notification naming `device` after the calls recorded so far. */
  next(device: string): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push({ device, after: this.calls.length, resolve });
    });
  }

  last(): string[] | undefined {
    return this.calls.at(-1);
  }
}

/** Time a test waits for a change notification before it fails. */
const NOTIFICATION_LIMIT_MS = 30_000;

/**
 * Awaits `notification`, a promise from `RecordingNotifier.next(device)`, and
 * rejects when it has not resolved within `NOTIFICATION_LIMIT_MS`. The
 * limit's timer is referenced, so it also keeps the process alive. That
 * matters because activation timers are unref'd, and the test runner would
 * otherwise end a test whose only pending work is one of them.
 */
async function waitForNotification(notification: Promise<void>, device: string): Promise<void> {
  const message = `no change notification named device "${device}" within ${NOTIFICATION_LIMIT_MS} ms`;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), NOTIFICATION_LIMIT_MS);
  });
  try {
    await Promise.race([notification, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Yields to the event loop once. The fixtures run on an in-memory barrier,
 * so without this the tests before the first real timer run as one stretch
 * of microtasks. Until that stretch ends, the runner neither prints a
 * finished test nor fires a timeout.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A memory barrier that counts reads, to check what a device's artifacts cost. */
class CountingBarrier extends MemoryBarrier {
  gets = 0;
  lists = 0;

  override async get(key: string) {
    this.gets += 1;
    return super.get(key);
  }

  override async list(prefix: string) {
    this.lists += 1;
    return super.list(prefix);
  }
}

interface Fixture {
  barrier: CountingBarrier;
  clock: FixedClock;
  notifier: RecordingNotifier;
  office: WireguardService;
  vpn: WireguardService;
  source: WireguardDeviceSource;
  keys: Record<string, string>;
}

async function createFixture(): Promise<Fixture> {
  const barrier = new CountingBarrier();
  const clock = new FixedClock();
  const notifier = new RecordingNotifier();
  const logger = new RecordingLogger();
  const make = (mount: string) =>
    new WireguardService({ barrier, mount, clock: clock.now, logger, notifier });
  const office = make("wireguard");
  const vpn = make("vpn");
  const source = new WireguardDeviceSource(() => [office, vpn]);
  const keys = { alpha: pub(), bravo: pub(), charlie: pub(), delta: pub(), echo: pub() };
  await office.writeNetwork("office", { addressRanges: "10.20.0.0/24", rotationNotice: "1h" });
  await office.writePeer("office", "alpha", { publicKey: keys.alpha, deviceId: "gw-1" });
  await office.writePeer("office", "bravo", { publicKey: keys.bravo, deviceId: "gw-2" });
  await office.writePeer("office", "charlie", { publicKey: keys.charlie });
  await vpn.writeNetwork("lab", { addressRanges: "10.30.0.0/24", rotationNotice: "1h" });
  await vpn.writePeer("lab", "delta", { publicKey: keys.delta, deviceId: "gw-1" });
  await vpn.writePeer("lab", "echo", { publicKey: keys.echo, deviceId: "gw-2" });
  return { barrier, clock, notifier, office, vpn, source, keys };
}

function find(artifacts: DeviceArtifact[], id: string): DeviceArtifact {
  const artifact = artifacts.find((candidate) => candidate.id === id);
  assert.ok(artifact, `no artifact ${id} in ${artifacts.map((a) => a.id).join(", ")}`);
  return artifact;
}

function peerKeys(config: string | undefined): string[] {
  assert.ok(config !== undefined);
  return parseConfig(config)
    .filter((section) => section.section === "Peer")
    .map((section) => section.fields.get("PublicKey") ?? "");
}

const ALPHA = "wireguard:wireguard:office:alpha";

/**
 * Limit of each suite below. A test that waits forever on a promise or a
 * timer fails within a minute and is named in the report. A test stuck in
 * synchronous or native code cannot be interrupted, so each test first
 * yields to the event loop, and the report then lists every test that
 * finished before the stuck one.
 */
const SUITE_LIMIT = { timeout: 60_000 };

describe("wireguard device source", SUITE_LIMIT, () => {
  let f: Fixture;
  beforeEach(async () => {
    await yieldToEventLoop();
    f = await createFixture();
  });
  afterEach(() => {
    f.office.close();
    f.vpn.close();
  });

  it("returns one artifact per bound peer", async () => {
    const artifacts = await f.source.artifactsFor(device("gw-1"));
    assert.deepEqual(artifacts.map((artifact) => artifact.id).sort(), [
      "wireguard:vpn:lab:delta",
      ALPHA,
    ]);
    const alpha = find(artifacts, ALPHA);
    assert.equal(alpha.kind, "wireguard");
    assert.equal(f.source.kind, "wireguard");
    const { peer_id: peerId, ...fields } = alpha.fields;
    assert.match(String(peerId), /^[0-9a-f-]{36}$/);
    assert.deepEqual(fields, {
      mount: "wireguard",
      network: "office",
      peer: "alpha",
      public_key: f.keys.alpha,
      key_version: 1,
      addresses: ["10.20.0.1/24"],
      listen_port: 51_820,
      rotate_key: false,
    });
    const quick = await f.office.renderConfig("office", "alpha", "wg-quick");
    const plain = await f.office.renderConfig("office", "alpha", "wg");
    assert.equal(alpha.version, quick.configVersion);
    assert.equal(alpha.secrets["wg-quick"], quick.config);
    assert.equal(alpha.secrets.wg, plain.config);
    assert.equal(alpha.next, undefined);
    assert.deepEqual(await f.source.artifactsFor(device("gw-9")), []);
  });

  it("shows a peer awaiting its key", async () => {
    await f.office.writePeer("office", "foxtrot", { deviceId: "gw-3" });
    const [artifact] = await f.source.artifactsFor(device("gw-3"));
    assert.equal(artifact?.fields.public_key, null);
    assert.equal(artifact?.fields.key_version, 0);
    assert.equal(artifact?.fields.rotate_key, false);
  });

  it("sets rotate_key on request", async () => {
    await f.office.requestRotation("office", "alpha");
    const alpha = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.equal(alpha.fields.rotate_key, true);
  });

  it("announces a listed peer's staged key", async () => {
    const next = pub();
    await f.office.rotatePeer("office", "bravo", { publicKey: next });
    const alpha = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.deepEqual(peerKeys(alpha.secrets.wg).sort(), [f.keys.bravo, f.keys.charlie].sort());
    assert.ok(alpha.next);
    assert.equal(alpha.next.activateAt, "2030-01-01T01:00:00.000Z");
    assert.ok(alpha.next.version > alpha.version);
    assert.deepEqual(peerKeys(alpha.next.secrets.wg).sort(), [next, f.keys.charlie].sort());
    assert.deepEqual(
      peerKeys(alpha.next.secrets["wg-quick"]).sort(),
      [next, f.keys.charlie].sort(),
    );
    assert.equal(alpha.next.fields.public_key, f.keys.alpha);

    // At activation the artifact is exactly what `next` announced.
    f.clock.advance(HOUR_MS);
    const activated = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.equal(activated.next, undefined);
    assert.equal(activated.version, alpha.next.version);
    assert.deepEqual(activated.fields, alpha.next.fields);
    assert.deepEqual(activated.secrets, alpha.next.secrets);
  });

  it("announces its own staged key", async () => {
    const next = pub();
    await f.office.rotatePeer("office", "alpha", { publicKey: next });
    const alpha = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.equal(alpha.fields.public_key, f.keys.alpha);
    assert.equal(alpha.fields.key_version, 1);
    assert.equal(alpha.next?.fields.public_key, next);
    assert.equal(alpha.next?.fields.key_version, 2);
    assert.notEqual(alpha.next?.secrets.wg, alpha.secrets.wg);
  });

  it("announces the soonest activation", async () => {
    await f.office.rotatePeer("office", "charlie", { publicKey: pub() });
    f.clock.advance(HOUR_MS / 2);
    const next = pub();
    await f.office.rotatePeer("office", "alpha", { publicKey: next });
    const first = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.equal(first.next?.activateAt, "2030-01-01T01:00:00.000Z");
    assert.equal(first.next?.fields.public_key, f.keys.alpha);

    f.clock.advance(HOUR_MS / 2);
    const second = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.equal(second.version, first.next?.version);
    assert.equal(second.next?.activateAt, "2030-01-01T01:30:00.000Z");
    assert.equal(second.next?.fields.public_key, next);
    assert.ok((second.next?.version ?? 0) > second.version);
  });

  it("ignores staged keys of unlisted peers", async () => {
    await f.office.writeNetwork("branches", {
      addressRanges: "10.40.0.0/24",
      topology: "hub-and-spoke",
      hub: "hub",
      rotationNotice: "1h",
    });
    await f.office.writePeer("branches", "hub", { publicKey: pub(), deviceId: "hub-1" });
    await f.office.writePeer("branches", "east", { publicKey: pub(), deviceId: "east-1" });
    await f.office.writePeer("branches", "west", { publicKey: pub(), deviceId: "west-1" });
    await f.office.rotatePeer("branches", "east", { publicKey: pub() });
    const [west] = await f.source.artifactsFor(device("west-1"));
    assert.equal(west?.next, undefined);
    const [hub] = await f.source.artifactsFor(device("hub-1"));
    assert.equal(hub?.next?.activateAt, "2030-01-01T01:00:00.000Z");
  });

  it("deletes a revoked device's peers", async () => {
    await f.source.deviceRevoked(device("gw-2"));
    assert.deepEqual(await f.source.artifactsFor(device("gw-2")), []);
    assert.deepEqual(await f.office.listPeers("office"), ["alpha", "charlie"]);
    assert.deepEqual(await f.vpn.listPeers("lab"), ["delta"]);
    const alpha = find(await f.source.artifactsFor(device("gw-1")), ALPHA);
    assert.deepEqual(peerKeys(alpha.secrets.wg), [f.keys.charlie]);
    const delta = find(await f.source.artifactsFor(device("gw-1")), "wireguard:vpn:lab:delta");
    assert.deepEqual(peerKeys(delta.secrets.wg), []);
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2"]);
    // The addresses are free again.
    const again = await f.vpn.writePeer("lab", "foxtrot", { publicKey: pub() });
    assert.deepEqual(again.peer.addresses, ["10.30.0.2"]);
  });

  it("reads per device stay flat", async () => {
    const spokes = 1_000;
    await f.office.writeNetwork("fleet", {
      addressRanges: "10.64.0.0/16",
      topology: "hub-and-spoke",
      hub: "hub",
      rotationNotice: "1h",
    });
    await f.office.writePeer("fleet", "hub", { publicKey: pub(), deviceId: "hub" });
    for (let index = 0; index < spokes; index++) {
      await f.office.writePeer("fleet", `spoke-${index}`, {
        publicKey: pub(),
        deviceId: `spoke-${index}`,
      });
    }
    const next = pub();
    await f.office.rotatePeer("fleet", "hub", { publicKey: next });
    await f.source.artifactsFor(device("spoke-0"));

    f.barrier.gets = 0;
    f.barrier.lists = 0;
    for (let index = 0; index < spokes; index++) {
      const [artifact] = await f.source.artifactsFor(device(`spoke-${index}`));
      assert.equal(peerKeys(artifact?.secrets.wg).length, 1);
      assert.deepEqual(peerKeys(artifact?.next?.secrets.wg), [next]);
    }
    // Per device: one listing and one read of each network record, on each of the two mounts.
    const networks = (await f.office.listNetworks()).length + (await f.vpn.listNetworks()).length;
    assert.ok(f.barrier.lists <= spokes * 2 + 2, `${f.barrier.lists} listings`);
    assert.ok(f.barrier.gets <= spokes * networks, `${f.barrier.gets} reads`);
  });
});

describe("wireguard change notification", SUITE_LIMIT, () => {
  let f: Fixture;
  beforeEach(async () => {
    await yieldToEventLoop();
    f = await createFixture();
  });
  afterEach(() => {
    f.office.close();
    f.vpn.close();
  });

  it("names the devices of the network", async () => {
    await f.office.writePeer("office", "charlie", { endpoint: "192.0.2.3:51820" });
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2"]);
    await f.vpn.rotatePeer("lab", "delta", { publicKey: pub() });
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2"]);
    await f.office.writeNetwork("office", { dns: "10.20.0.1" });
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2"]);
  });

  it("names a peer's old and new device", async () => {
    await f.office.writePeer("office", "charlie", { deviceId: "gw-3" });
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2", "gw-3"]);
    await f.office.writePeer("office", "charlie", { deviceId: "gw-4" });
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2", "gw-3", "gw-4"]);
    await f.office.deletePeer("office", "charlie");
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2", "gw-4"]);
    await f.office.deleteNetwork("office");
    assert.deepEqual(f.notifier.last(), ["gw-1", "gw-2"]);
  });

  it("notifies when a staged key activates", async () => {
    await f.office.writeNetwork("office", { rotationNotice: 1 });
    await f.office.rotatePeer("office", "bravo", { publicKey: pub() });
    const activated = f.notifier.next("gw-1");
    // The timer fires after one real second, so the fixed clock must read the activation time by then.
    f.clock.advance(1000);
    await waitForNotification(activated, "gw-1");
  });

  it("re-arms timers in a new service", async () => {
    await f.office.writeNetwork("office", { rotationNotice: 1 });
    await f.office.rotatePeer("office", "bravo", { publicKey: pub() });
    f.office.close();

    const notifier = new RecordingNotifier();
    const restarted = new WireguardService({
      barrier: f.barrier,
      mount: "wireguard",
      clock: f.clock.now,
      notifier,
    });
    try {
      assert.deepEqual(await restarted.activateStagedKeys(f.clock.now()), []);
      const activated = notifier.next("gw-2");
      f.clock.advance(1000);
      await waitForNotification(activated, "gw-2");
    } finally {
      restarted.close();
    }
  });

  it("survives a failing notifier", async () => {
    const logger = new RecordingLogger();
    const service = new WireguardService({
      barrier: new MemoryBarrier(),
      mount: "wireguard",
      logger,
      notifier: {
        changed() {
          throw new Error("listener failed");
        },
      },
    });
    await service.writeNetwork("office", { addressRanges: "10.20.0.0/24" });
    await service.writePeer("office", "alpha", { publicKey: pub(), deviceId: "gw-1" });
    assert.deepEqual(logger.messages("error"), ["device change notification failed"]);
  });
});

describe("wireguard activation timers", () => {
  it("arms, replaces and clears timers", () => {
    const clock = new FixedClock();
    const fired: string[] = [];
    const timers = new ActivationTimers(
      clock.now,
      (network) => fired.push(network),
      new RecordingLogger(),
    );
    const at = clock.now().getTime();
    timers.sync("office", [
      { peer: "alpha", activateAt: at + HOUR_MS },
      { peer: "bravo", activateAt: at - 1 },
    ]);
    assert.equal(timers.size, 1);
    timers.sync("lab", [{ peer: "delta", activateAt: at + 100 * 24 * HOUR_MS }]);
    assert.equal(timers.size, 2);
    timers.sync("office", []);
    assert.equal(timers.size, 1);
    timers.clearNetwork("lab");
    assert.equal(timers.size, 0);
    timers.sync("office", [{ peer: "alpha", activateAt: at + HOUR_MS }]);
    timers.close();
    assert.equal(timers.size, 0);
    timers.sync("office", [{ peer: "alpha", activateAt: at + HOUR_MS }]);
    assert.equal(timers.size, 0);
    assert.deepEqual(fired, []);
  });
});
