import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Keyward } from "../core/keyward.ts";

/** Latency buckets in seconds, from 1 ms to 5 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** How long a key count is reused before the keys are read again, in milliseconds. */
const KEY_COUNT_MAX_AGE_MS = 30_000;

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
      help: "Managed keys by mount, key type and state.",
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

/**
 * Counts keys by reading every key's metadata through the transit engines,
 * at most once per KEY_COUNT_MAX_AGE_MS.
 * NOTE: a scrape that finds the cache stale reads every key; with very many
 * keys this wants counters kept as keys change instead.
 */
class KeyCounter {
  readonly #keyward: Keyward;
  #cached: { at: number; counts: KeyCount[] } | undefined;

  constructor(keyward: Keyward) {
    this.#keyward = keyward;
  }

  async read(): Promise<KeyCount[]> {
    if (this.#keyward.sealed) return [];
    const now = Date.now();
    if (this.#cached && now - this.#cached.at < KEY_COUNT_MAX_AGE_MS) return this.#cached.counts;
    const totals = new Map<string, KeyCount>();
    for (const mount of this.#keyward.mounts()) {
      const service = this.#keyward.transit(mount.path);
      if (!service) continue;
      for (const name of await service.listKeys()) {
        const info = await service.readKey(name);
        const id = `${mount.path}\u0000${info.type}\u0000${info.state}`;
        const total = totals.get(id) ?? {
          mount: mount.path,
          type: info.type,
          state: info.state,
          count: 0,
          rotations: 0,
        };
        total.count += 1;
        total.rotations += Math.max(0, info.latestVersion - 1);
        totals.set(id, total);
      }
    }
    const counts = [...totals.values()];
    this.#cached = { at: now, counts };
    return counts;
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
