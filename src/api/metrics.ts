import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Keyward } from "../core/keyward.ts";
import { isKeywardError } from "../errors.ts";

/** Latency buckets in seconds, from 1 ms to 5 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The shortest time between the starts of two key counts, in milliseconds. */
const KEY_COUNT_MIN_INTERVAL_MS = 30_000;

/**
 * A count starts no sooner than this many times the last count's duration
 * after that count started, so counting many keys takes at most a tenth of
 * the server's time.
 */
const KEY_COUNT_INTERVAL_FACTOR = 10;

/** How long a scrape waits for the first count to finish before it reports none, in milliseconds. */
const FIRST_COUNT_WAIT_MS = 2_000;

/**
 * Prometheus metrics of one server: requests by route and status, latency,
 * seal state, key counts by type and state, rotations, and audit writes and
 * failures. Labels carry route patterns
 * (`/v1/:mount/encrypt/:name`), never concrete key names or values.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests: Counter<"method" | "route" | "status">;
  readonly #latency: Histogram<"method" | "route">;

  constructor(keyward: Keyward) {
    collectDefaultMetrics({ register: this.registry, prefix: "keyward_process_" });
    this.#requests = new Counter({
      name: "keyward_http_requests_total",
      help: "HTTP requests by method, route pattern and status code.",
      labelNames: ["method", "route", "status"],
      registers: [this.registry],
    });
    this.#latency = new Histogram({
      name: "keyward_http_request_duration_seconds",
      help: "HTTP request latency in seconds, by method and route pattern.",
      labelNames: ["method", "route"],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    new Gauge({
      name: "keyward_sealed",
      help: "1 while the server is sealed, 0 while unsealed.",
      registers: [this.registry],
      collect() {
        this.set(keyward.sealed ? 1 : 0);
      },
    });
    new Gauge({
      name: "keyward_cluster_leader",
      help: "1 while this node is the leader, which runs the scheduled jobs; 0 otherwise.",
      registers: [this.registry],
      collect() {
        this.set(keyward.cluster.isLeader ? 1 : 0);
      },
    });
    const jobRuns = new Counter({
      name: "keyward_job_runs_total",
      help: "Runs of scheduled jobs on this node, by job name and outcome (success or failure).",
      labelNames: ["job", "outcome"],
      registers: [this.registry],
    });
    keyward.onJobRun((job, outcome) => jobRuns.inc({ job, outcome }));
    new Counter({
      name: "keyward_audit_writes_total",
      help: "Audit records written, by audit device, since the device was last opened.",
      labelNames: ["device"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [device, stats] of Object.entries(keyward.audit.stats())) {
          this.inc({ device }, stats.writes);
        }
      },
    });
    new Counter({
      name: "keyward_audit_failures_total",
      help: "Failed audit writes, by audit device, since the device was last opened.",
      labelNames: ["device"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [device, stats] of Object.entries(keyward.audit.stats())) {
          this.inc({ device }, stats.failures);
        }
      },
    });
    const keyCounts = new KeyCounter(keyward);
    new Gauge({
      name: "keyward_key_rotations",
      help: "Rotations of the existing keys (versions after the first), by mount.",
      labelNames: ["mount"],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rotations = new Map<string, number>();
        for (const { mount, rotations: count } of await keyCounts.read()) {
          rotations.set(mount, (rotations.get(mount) ?? 0) + count);
        }
        for (const [mount, count] of rotations) this.set({ mount }, count);
      },
    });
    new Gauge({
      name: "keyward_keys",
      help: "Managed keys by mount, key type and state, from the last background count.",
      labelNames: ["mount", "type", "state"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { mount, type, state, count } of await keyCounts.read()) {
          this.set({ mount, type, state }, count);
        }
      },
    });
  }

  /** Records one finished request. */
  observe(method: string, route: string, status: number, seconds: number) {
    this.#requests.inc({ method, route, status: String(status) });
    this.#latency.observe({ method, route }, seconds);
  }
}

interface KeyCount {
  mount: string;
  type: string;
  state: string;
  count: number;
  /** Versions after the first, summed over the keys counted. */
  rotations: number;
}

/** The result of the last finished count. */
interface CountResult {
  startedAt: number;
  durationMs: number;
  counts: KeyCount[];
}

/**
 * Counts keys by mount, type and state for the key gauges, in the
 * background. A count reads every key of every transit mount, page by page
 * and yielding between pages (`TransitService.countKeys`), so its time
 * grows with the number of keys. A scrape therefore never counts: it serves
 * the last count, and starts a new one in the background when the last is
 * older than KEY_COUNT_MIN_INTERVAL_MS and ten times its own duration.
 * Only the first scrape waits, up to FIRST_COUNT_WAIT_MS, so a small
 * installation reports its keys at once.
 *
 * Counters kept up to date by every key write were the alternative. They
 * would be exact at every scrape, but the state of a pre-active key changes
 * with time and not with a write, and counters stored with the keys would
 * make every key write of every node update the same record.
 */
class KeyCounter {
  readonly #keyward: Keyward;
  #last: CountResult | undefined;
  #running: Promise<void> | undefined;
  /** When the last count that failed started; a new count waits the minimum interval after it. */
  #failedAt = Number.NEGATIVE_INFINITY;

  constructor(keyward: Keyward) {
    this.#keyward = keyward;
  }

  /** Returns the last count, starting a new one in the background when it is due. */
  async read(): Promise<KeyCount[]> {
    if (this.#keyward.sealed) return [];
    if (this.#running === undefined && this.#countDue(Date.now())) {
      this.#running = this.#count().finally(() => {
        this.#running = undefined;
      });
    }
    if (this.#last === undefined && this.#running !== undefined) {
      await waitAtMost(this.#running, FIRST_COUNT_WAIT_MS);
    }
    return this.#last?.counts ?? [];
  }

  #countDue(now: number): boolean {
    if (now - this.#failedAt < KEY_COUNT_MIN_INTERVAL_MS) return false;
    const last = this.#last;
    if (last === undefined) return true;
    const interval = Math.max(
      KEY_COUNT_MIN_INTERVAL_MS,
      KEY_COUNT_INTERVAL_FACTOR * last.durationMs,
    );
    return now - last.startedAt >= interval;
  }

  async #count(): Promise<void> {
    const startedAt = Date.now();
    try {
      const counts: KeyCount[] = [];
      for (const mount of this.#keyward.mounts()) {
        const service = this.#keyward.transit(mount.path);
        if (!service) continue;
        for (const count of await service.countKeys()) counts.push({ mount: mount.path, ...count });
      }
      this.#last = { startedAt, durationMs: Date.now() - startedAt, counts };
    } catch (error) {
      this.#failedAt = startedAt;
      // A seal during the count is expected; the gauges report nothing while sealed.
      if (isKeywardError(error) && error.code === "sealed") return;
      this.#keyward.logger.error({ err: error }, "key count for metrics failed");
    }
  }
}

/** Waits for `work` or for `milliseconds`, whichever ends first. `work` never rejects here. */
async function waitAtMost(work: Promise<void>, milliseconds: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, milliseconds);
    timer.unref();
  });
  try {
    await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `GET /v1/sys/metrics`: the Prometheus text format, as Vault serves it with `?format=prometheus`. */
export async function registerMetricsRoutes(app: FastifyInstance, metrics: Metrics) {
  app.get("/v1/sys/metrics", {
    schema: {
      tags: ["sys"],
      summary: "Prometheus metrics: requests, latency, seal state and key counts.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: { format: { type: "string", enum: ["prometheus", ""] } },
      },
    },
    handler: async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    },
  });
}
