import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Job, Scheduler } from "../../src/jobs/scheduler.ts";
import { RecordingLogger } from "../engines/transit/fixtures.ts";

/** Lets pending promise callbacks run; setImmediate is not mocked. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Creates a job that records its runs and, when `blocking`, waits until released. */
function countingJob(
  name: string,
  intervalMs: number,
  options: { blocking?: boolean; fail?: boolean } = {},
) {
  const runs: Date[] = [];
  let release: (() => void) | undefined;
  const job: Job = {
    name,
    intervalMs,
    async run(now) {
      runs.push(now);
      if (options.blocking) await new Promise<void>((resolve) => (release = resolve));
      if (options.fail) throw new Error("job failed on purpose");
    },
  };
  return { job, runs, release: () => release?.() };
}

describe("Scheduler", () => {
  it("runs jobs at start and each interval", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const scheduler = new Scheduler();
    const fast = countingJob("fast", 1000);
    const slow = countingJob("slow", 5000);
    scheduler.register(fast.job);
    scheduler.register(slow.job);

    scheduler.start();
    await flush();
    assert.equal(fast.runs.length, 1);
    assert.equal(slow.runs.length, 1);

    t.mock.timers.tick(1000);
    await flush();
    assert.equal(fast.runs.length, 2);
    assert.equal(slow.runs.length, 1);

    t.mock.timers.tick(4000);
    await flush();
    assert.equal(slow.runs.length, 2);
    await scheduler.stop();
  });

  it("passes the clock's time to runs", async () => {
    const fixed = new Date("2031-05-01T00:00:00Z");
    const scheduler = new Scheduler({ clock: () => fixed });
    const job = countingJob("clocked", 60_000);
    scheduler.register(job.job);
    scheduler.start();
    await scheduler.stop();
    assert.deepEqual(job.runs, [fixed]);
  });

  it("never overlaps a slow run", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const scheduler = new Scheduler();
    const slow = countingJob("slow", 1000, { blocking: true });
    scheduler.register(slow.job);
    scheduler.start();
    await flush();
    assert.equal(slow.runs.length, 1);

    for (let i = 0; i < 5; i++) {
      t.mock.timers.tick(1000);
      await flush();
    }
    assert.equal(slow.runs.length, 1);

    // The run took five intervals, so the next one starts right away.
    slow.release();
    await flush();
    t.mock.timers.tick(0);
    await flush();
    assert.equal(slow.runs.length, 2);
    slow.release();
    await scheduler.stop();
  });

  it("logs errors and keeps running", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const logger = new RecordingLogger();
    const scheduler = new Scheduler({ logger });
    const failing = countingJob("failing", 1000, { fail: true });
    scheduler.register(failing.job);
    scheduler.start();
    await flush();
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(failing.runs.length, 2);
    const errors = logger.entries.filter((entry) => entry.level === "error");
    assert.equal(errors.length, 2);
    assert.equal(errors[0]?.fields.job, "failing");
    assert.equal(errors[0]?.message, "job run failed");
    await scheduler.stop();
    assert.ok(logger.messages("info").includes("job scheduler stopped"));
  });

  it("reports each run to onRun", async () => {
    const runs: [string, string, number][] = [];
    const logger = new RecordingLogger();
    const scheduler = new Scheduler({
      logger,
      onRun: (job, outcome, durationMs) => {
        runs.push([job, outcome, durationMs]);
        if (job === "failing") throw new Error("hook failed on purpose");
      },
    });
    scheduler.register(countingJob("working", 60_000).job);
    scheduler.register(countingJob("failing", 60_000, { fail: true }).job);
    scheduler.start();
    await flush();
    await scheduler.stop();

    assert.deepEqual(
      runs.map(([job, outcome]) => [job, outcome]),
      [
        ["working", "success"],
        ["failing", "failure"],
      ],
    );
    for (const [, , durationMs] of runs) assert.ok(durationMs >= 0);
    const hookErrors = logger.entries.filter((entry) => entry.message === "job run hook failed");
    assert.equal(hookErrors.length, 1);
    assert.equal(hookErrors[0]?.fields.job, "failing");
  });

  it("skips runs beforeRun refuses", async () => {
    const logger = new RecordingLogger();
    const answers = [false, true];
    let checks = 0;
    const scheduler = new Scheduler({
      logger,
      beforeRun: async () => {
        checks += 1;
        if (checks === 3) throw new Error("check failed on purpose");
        return answers.shift() ?? false;
      },
    });
    const refused = countingJob("refused", 60_000);
    const allowed = countingJob("allowed", 60_000);
    const failedCheck = countingJob("failed-check", 60_000);
    scheduler.register(refused.job);
    scheduler.register(allowed.job);
    scheduler.register(failedCheck.job);
    scheduler.start();
    await flush();
    await flush();
    await scheduler.stop();

    assert.equal(checks, 3);
    assert.equal(refused.runs.length, 0);
    assert.equal(allowed.runs.length, 1);
    assert.equal(failedCheck.runs.length, 0);
    const errors = logger.entries.filter(
      (entry) => entry.message === "job run skipped: the check before it failed",
    );
    assert.equal(errors.length, 1);
  });

  it("stop waits for running jobs", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const scheduler = new Scheduler();
    const slow = countingJob("slow", 1000, { blocking: true });
    scheduler.register(slow.job);
    scheduler.start();
    await flush();

    let stopped = false;
    const stopping = scheduler.stop().then(() => {
      stopped = true;
    });
    await flush();
    assert.equal(stopped, false);
    slow.release();
    await stopping;
    assert.equal(stopped, true);

    t.mock.timers.tick(10_000);
    await flush();
    assert.equal(slow.runs.length, 1);
  });

  const badJobs: Array<[string, Partial<Job>]> = [
    ["fail zero interval", { intervalMs: 0 }],
    ["fail fractional interval", { intervalMs: 1.5 }],
    ["fail duplicate name", { name: "taken" }],
  ];
  for (const [title, override] of badJobs) {
    it(title, () => {
      const scheduler = new Scheduler();
      scheduler.register(countingJob("taken", 1000).job);
      const job = { ...countingJob("other", 1000).job, ...override };
      assert.throws(() => scheduler.register(job), Error);
    });
  }

  it("rejects registration after start", async () => {
    const scheduler = new Scheduler();
    scheduler.start();
    assert.throws(
      () => scheduler.register(countingJob("late", 1000).job),
      /after the scheduler started/,
    );
    await scheduler.stop();
  });
});
