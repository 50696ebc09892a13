import assert from "node:assert/strict";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { createFastify } from "../../../src/api/app.ts";
import { registerWireguardRoutes, WireguardService } from "../../../src/engines/wireguard/index.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { openSqliteBarrier } from "../ssh/fixtures.ts";
import { FixedClock, RecordingLogger } from "../transit/fixtures.ts";

export { FixedClock, RecordingLogger } from "../transit/fixtures.ts";

export interface WireguardFixture {
  service: WireguardService;
  barrier: MemoryBarrier;
  clock: FixedClock;
  logger: RecordingLogger;
}

/** Creates a service over an in-memory barrier on a fixed clock. */
export function createWireguardFixture(): WireguardFixture {
  const clock = new FixedClock();
  const logger = new RecordingLogger();
  const barrier = new MemoryBarrier();
  const service = new WireguardService({ barrier, mount: "wireguard", clock: clock.now, logger });
  return { service, barrier, clock, logger };
}

export interface WireguardRouteFixture {
  service: WireguardService;
  app: FastifyInstance;
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * Builds a bare Fastify app with the WireGuard routes under `/v1/wireguard`,
 * set up as the API's app is (unknown fields rejected, Keyward's error
 * handler), on a real SQLite barrier and without authentication.
 */
export async function createWireguardRouteFixture(): Promise<WireguardRouteFixture> {
  const opened = await openSqliteBarrier();
  const service = new WireguardService({ barrier: opened.barrier, mount: "wireguard" });
  const app = createFastify();
  await app.register(async (scope) => registerWireguardRoutes(scope, () => service), {
    prefix: "/v1/wireguard",
  });
  await app.ready();
  return {
    service,
    app,
    request: (options) => app.inject(options),
    async close() {
      await app.close();
      await opened.close();
    },
  };
}

/** Sends a request and returns `data` of a 200 response, failing with the body otherwise. */
export async function ok(
  fixture: { request(options: InjectOptions): Promise<LightMyRequestResponse> },
  method: "GET" | "POST" | "DELETE",
  url: string,
  payload?: object,
  // biome-ignore lint/suspicious/noExplicitAny: test helper returning response data of any shape
): Promise<Record<string, any>> {
  const response = await fixture.request({ method, url, ...(payload ? { payload } : {}) });
  assert.equal(response.statusCode, 200, `${method} ${url}: ${response.body}`);
  return response.json().data;
}

/** Parses a rendered configuration into sections of key/value lines, comments dropped. */
export function parseConfig(text: string): { section: string; fields: Map<string, string> }[] {
  const sections: { section: string; fields: Map<string, string> }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      sections.push({ section: header[1] as string, fields: new Map() });
      continue;
    }
    const [key, ...rest] = line.split(" = ");
    sections.at(-1)?.fields.set(key as string, rest.join(" = "));
  }
  return sections;
}
