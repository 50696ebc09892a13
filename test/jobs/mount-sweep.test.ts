import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeywardError } from "../../src/errors.ts";
import { createMountSweepJob } from "../../src/jobs/mount-sweep.ts";

interface LogLine {
  level: "info" | "error";
  fields: Record<string, unknown>;
  message: string | undefined;
}

function recordingLogger() {
  const lines: LogLine[] = [];
  const record = (level: LogLine["level"]) => (fields: object, message?: string) => {
    lines.push({ level, fields: fields as Record<string, unknown>, message });
  };
  return { lines, info: record("info"), error: record("error") };
}

const NOW = new Date("2030-01-01T00:00:00Z");

describe("mount sweep job", () => {
  it("runs work on every mount", async () => {
    const seen: string[] = [];
    const job = createMountSweepJob({
      name: "test-sweep",
      intervalMs: 60_000,
      services: () => [{ mount: "a" }, { mount: "b" }],
      work: async (service, now) => {
        assert.equal(now, NOW);
        seen.push(service.mount);
      },
    });
    assert.equal(job.name, "test-sweep");
    assert.equal(job.intervalMs, 60_000);
    await job.run(NOW);
    assert.deepEqual(seen, ["a", "b"]);
  });

  it("skips sealed and uninitialised mounts quietly", async () => {
    const logger = recordingLogger();
    const job = createMountSweepJob({
      name: "test-sweep",
      intervalMs: 60_000,
      services: () => [{ mount: "sealed" }, { mount: "new" }],
      logger,
      work: async (service) => {
        if (service.mount === "sealed") throw new KeywardError("sealed", "sealed");
        throw new KeywardError("not_initialized", "not initialised");
      },
    });
    await job.run(NOW);
    assert.deepEqual(logger.lines, []);
  });

  it("logs a failed mount and runs the others", async () => {
    const logger = recordingLogger();
    const seen: string[] = [];
    const job = createMountSweepJob({
      name: "test-sweep",
      intervalMs: 60_000,
      services: () => [{ mount: "a" }, { mount: "b" }, { mount: "c" }],
      logger,
      work: async (service) => {
        seen.push(service.mount);
        if (service.mount !== "b") throw new Error(`broken ${service.mount}`);
      },
    });
    await assert.rejects(job.run(NOW), { message: "test-sweep failed for mounts: a, c" });
    assert.deepEqual(seen, ["a", "b", "c"]);
    assert.deepEqual(
      logger.lines.map((line) => [line.level, line.message, line.fields.mount, line.fields.job]),
      [
        ["error", "job failed for mount", "a", "test-sweep"],
        ["error", "job failed for mount", "c", "test-sweep"],
      ],
    );
    assert.ok(logger.lines[0]?.fields.err instanceof Error);
  });

  it("logs the names a reporting sweep changed", async () => {
    const logger = recordingLogger();
    const job = createMountSweepJob({
      name: "test-sweep",
      intervalMs: 60_000,
      services: () => [{ mount: "a" }, { mount: "b" }],
      logger,
      work: async (service) => (service.mount === "a" ? ["p1", "p2"] : []),
      changed: "peers",
    });
    await job.run(NOW);
    assert.deepEqual(logger.lines, [
      {
        level: "info",
        fields: { mount: "a", job: "test-sweep", peers: ["p1", "p2"] },
        message: "job changed peers",
      },
    ]);
  });
});
