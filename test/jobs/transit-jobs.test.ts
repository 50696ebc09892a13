import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Scheduler } from "../../src/jobs/scheduler.ts";
import { createTransitJobs, registerTransitJobs } from "../../src/jobs/transit-jobs.ts";
import { createFixture, DAY_MS, HOUR_MS, RecordingLogger } from "../engines/transit/fixtures.ts";

function jobNamed(jobs: ReturnType<typeof createTransitJobs>, name: string) {
  const job = jobs.find((candidate) => candidate.name === name);
  assert.ok(job, `no job named ${name}`);
  return job;
}

describe("transit jobs", () => {
  it("rotate due keys on every mount", async () => {
    const first = createFixture();
    const second = createFixture();
    await first.service.createKey("a", { autoRotatePeriod: "1h" });
    await second.service.createKey("b", { autoRotatePeriod: "2h" });
    const logger = new RecordingLogger();
    const jobs = createTransitJobs({
      services: () => [first.service, second.service],
      intervalMs: 60_000,
      logger,
    });

    const rotation = jobNamed(jobs, "transit-auto-rotation");
    await rotation.run(new Date(first.clock.now().getTime() + HOUR_MS));
    assert.equal((await first.service.readKey("a")).latestVersion, 2);
    assert.equal((await second.service.readKey("b")).latestVersion, 1);
    const changed = logger.entries.find((entry) => entry.message === "job changed keys");
    assert.ok(changed);
    assert.equal(changed.fields.count, 1);
    assert.deepEqual(changed.fields.keys, ["a"]);
  });

  it("delete keys whose date passed", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k");
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    const jobs = createTransitJobs({ services: () => [service], intervalMs: 60_000 });
    const deletion = jobNamed(jobs, "transit-scheduled-deletion");

    await deletion.run(new Date(clock.now().getTime() + 6 * DAY_MS));
    assert.deepEqual(await service.listKeys(), ["k"]);
    await deletion.run(new Date(clock.now().getTime() + 7 * DAY_MS));
    assert.deepEqual(await service.listKeys(), []);
  });

  it("skip sealed mounts quietly", async () => {
    const { service, barrier } = createFixture();
    barrier.sealed = true;
    const logger = new RecordingLogger();
    const jobs = createTransitJobs({ services: () => [service], intervalMs: 60_000, logger });
    for (const job of jobs) await job.run(new Date());
    assert.deepEqual(logger.messages("error"), []);
  });

  it("report a failing mount after the rest", async () => {
    const healthy = createFixture();
    await healthy.service.createKey("k", { autoRotatePeriod: "1h" });
    const broken = {
      mount: "broken",
      rotateDueKeys: async () => {
        throw new Error("storage unreachable");
      },
      deleteDueKeys: async () => ({ count: 0, names: [], failed: 0 }),
    };
    const logger = new RecordingLogger();
    const jobs = createTransitJobs({
      services: () => [broken, healthy.service],
      intervalMs: 60_000,
      logger,
    });
    const rotation = jobNamed(jobs, "transit-auto-rotation");
    await assert.rejects(
      rotation.run(new Date(healthy.clock.now().getTime() + HOUR_MS)),
      /transit-auto-rotation failed for mounts: broken/,
    );
    assert.equal((await healthy.service.readKey("k")).latestVersion, 2);
    assert.ok(logger.messages("error").includes("job failed for mount"));
  });

  it("catch up missed rotation at start", async () => {
    const { service, clock } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    // The server was down for a day: the first run at start rotates once.
    clock.advance(DAY_MS);
    const scheduler = new Scheduler({ clock: clock.now });
    registerTransitJobs(scheduler, { services: () => [service], intervalMs: 60_000 });
    scheduler.start();
    await scheduler.stop();
    const key = await service.readKey("k");
    assert.equal(key.latestVersion, 2);
  });
});
