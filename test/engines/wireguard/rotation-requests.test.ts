import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import {
  createWireguardJobs,
  generateKeyPair,
  type WireguardService,
} from "../../../src/engines/wireguard/index.ts";
import { createWireguardFixture, type WireguardFixture } from "./fixtures.ts";

const pub = () => generateKeyPair().publicKey;
const DAY_MS = 24 * 3600 * 1000;

describe("wireguard rotation requests", () => {
  let f: WireguardFixture;

  beforeEach(async () => {
    f = createWireguardFixture();
    await f.service.writeNetwork("office", {
      addressRanges: "10.20.0.0/24",
      rotationPeriod: "30d",
      rotationNotice: "1h",
    });
    await f.service.writePeer("office", "gateway", { publicKey: pub(), deviceId: "gw-1" });
    await f.service.writePeer("office", "laptop", { publicKey: pub() });
    await f.service.writePeer("office", "printer", { generateKey: true, deviceId: "gw-2" });
    await f.service.writePeer("office", "pending", { deviceId: "gw-3" });
  });

  it("requests agent keys past the period", async () => {
    f.clock.advance(30 * DAY_MS - 1);
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), []);
    f.clock.advance(1);
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), ["office/gateway"]);
    const gateway = await f.service.readPeer("office", "gateway");
    assert.equal(gateway.rotationRequested, true);
    assert.equal(gateway.rotationRequestedAt, "2030-01-31T00:00:00.000Z");
    for (const peer of ["laptop", "printer", "pending"]) {
      assert.equal((await f.service.readPeer("office", peer)).rotationRequested, false, peer);
    }
    // A request outstanding is not made twice.
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), []);
  });

  it("clears the request with a new key", async () => {
    f.clock.advance(30 * DAY_MS);
    await f.service.requestDueRotations(f.clock.now());
    const rotated = await f.service.rotatePeer("office", "gateway", { publicKey: pub() });
    assert.equal(rotated.peer.rotationRequested, false);
    assert.ok(rotated.peer.nextKey);
    // While the new key is staged, the job makes no new request.
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), []);
  });

  it("counts the period from activation", async () => {
    f.clock.advance(30 * DAY_MS);
    await f.service.rotatePeer("office", "gateway", { publicKey: pub() });
    f.clock.advance(30 * DAY_MS);
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), []);
    f.clock.advance(3600 * 1000);
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), ["office/gateway"]);
  });

  it("requests no rotation without a period", async () => {
    await f.service.writeNetwork("office", { rotationPeriod: 0 });
    f.clock.advance(365 * DAY_MS);
    assert.deepEqual(await f.service.requestDueRotations(f.clock.now()), []);
  });

  it("requests a rotation on demand", async () => {
    const peer = await f.service.requestRotation("office", "gateway");
    assert.equal(peer.rotationRequested, true);
    await assert.rejects(f.service.requestRotation("office", "laptop"), {
      code: "invalid_state",
      field: "device_id",
    });
    await assert.rejects(f.service.requestRotation("office", "printer"), {
      code: "invalid_state",
      field: "key_source",
    });
    await assert.rejects(f.service.requestRotation("office", "nobody"), { code: "not_found" });
  });

  it("runs as scheduled jobs", async () => {
    const services: WireguardService[] = [f.service];
    const jobs = createWireguardJobs({ services: () => services, intervalMs: 60_000 });
    assert.deepEqual(
      jobs.map((job) => job.name),
      ["wireguard-key-activation", "wireguard-rotation-requests"],
    );
    const next = pub();
    await f.service.rotatePeer("office", "laptop", { publicKey: next });
    f.clock.advance(30 * DAY_MS);
    for (const job of jobs) await job.run(f.clock.now());
    assert.equal((await f.service.readPeer("office", "gateway")).rotationRequested, true);
    const stored = f.barrier.values.get("wireguard/peers/office/laptop");
    assert.equal(JSON.parse(Buffer.from(stored ?? []).toString("utf8")).publicKey, next);
  });

  it("skips sealed mounts in jobs", async () => {
    const jobs = createWireguardJobs({ services: () => [f.service], intervalMs: 60_000 });
    f.barrier.sealed = true;
    for (const job of jobs) await job.run(f.clock.now());
  });

  it("reports failed mounts from jobs", async () => {
    const failing = {
      mount: "broken",
      activateStagedKeys: async () => {
        throw new Error("storage is gone");
      },
      requestDueRotations: async () => {
        throw new Error("storage is gone");
      },
    };
    const errors: object[] = [];
    const jobs = createWireguardJobs({
      services: () => [failing, f.service],
      intervalMs: 60_000,
      logger: { info() {}, error: (fields) => errors.push(fields) },
    });
    f.clock.advance(30 * DAY_MS);
    await assert.rejects((jobs[1] as (typeof jobs)[number]).run(f.clock.now()), /broken/);
    assert.equal(errors.length, 1);
    // The healthy mount still ran.
    assert.equal((await f.service.readPeer("office", "gateway")).rotationRequested, true);
  });
});
