import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DeviceChangeWaiters } from "../../src/devices/waiters.ts";

describe("device change waiters", () => {
  it("wakes a waiter on change", async () => {
    const waiters = new DeviceChangeWaiters();
    const subscription = waiters.subscribe("gw-1");
    const outcome = subscription.wait(60_000);
    waiters.changed(["gw-2", "gw-1"]);
    assert.equal(await outcome, "changed");
    assert.equal(waiters.size, 0);
  });

  it("reports a change made before the wait", async () => {
    const waiters = new DeviceChangeWaiters();
    const subscription = waiters.subscribe("gw-1");
    waiters.changed(["gw-1"]);
    assert.equal(await subscription.wait(60_000), "changed");
    assert.equal(waiters.size, 0);
  });

  it("ignores changes of other devices", async () => {
    const waiters = new DeviceChangeWaiters();
    const subscription = waiters.subscribe("gw-1");
    waiters.changed(["gw-2"]);
    assert.equal(await subscription.wait(10), "timeout");
    assert.equal(waiters.size, 0);
  });

  it("leaves nothing behind after 1000 aborted waits", async () => {
    const waiters = new DeviceChangeWaiters();
    const controllers: AbortController[] = [];
    const outcomes: Promise<string>[] = [];
    for (let index = 0; index < 1000; index++) {
      const controller = new AbortController();
      controllers.push(controller);
      outcomes.push(waiters.subscribe(`device-${index % 100}`).wait(60_000, controller.signal));
    }
    assert.equal(waiters.size, 1000);
    for (const controller of controllers) controller.abort();
    const results = await Promise.all(outcomes);
    assert.ok(results.every((result) => result === "aborted"));
    assert.equal(waiters.size, 0);
  });

  it("leaves nothing behind after 1000 timeouts and cancels", async () => {
    const waiters = new DeviceChangeWaiters();
    const outcomes: Promise<string>[] = [];
    for (let index = 0; index < 1000; index++) {
      const subscription = waiters.subscribe(`device-${index}`);
      if (index % 2 === 0) subscription.cancel();
      else outcomes.push(subscription.wait(1));
    }
    await Promise.all(outcomes);
    assert.equal(waiters.size, 0);
  });

  it("returns at once for an aborted signal", async () => {
    const waiters = new DeviceChangeWaiters();
    const controller = new AbortController();
    controller.abort();
    assert.equal(await waiters.subscribe("gw-1").wait(60_000, controller.signal), "aborted");
    assert.equal(waiters.size, 0);
  });

  it("wakes everyone at close", async () => {
    const waiters = new DeviceChangeWaiters();
    const outcomes = ["a", "b", "c"].map((name) => waiters.subscribe(name).wait(60_000));
    waiters.wakeAll();
    assert.deepEqual(await Promise.all(outcomes), ["changed", "changed", "changed"]);
    assert.equal(waiters.size, 0);
  });
});
