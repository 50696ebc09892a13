import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { KeywardAgent, MIN_ROUND_INTERVAL_MS } from "../../src/agent/agent.ts";
import { parseAgentConfig } from "../../src/agent/config.ts";
import { createAgentLogger } from "../../src/agent/logger.ts";
import { HostileServer } from "./hostile-server.ts";

const DEVICE = "gw-1";

describe("agent round pacing", () => {
  const server = new HostileServer();
  before(() => server.start());
  after(() => server.stop());

  it("paces a server that ignores the wait", async () => {
    // Enrols the agent, sends one state, then responds to every long poll at once with 304.
    let stateSent = false;
    server.handler = async (request, body, response) => {
      const path = new URL(request.url ?? "/", "https://x").pathname;
      const json = (data: unknown) => {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ request_id: "r", data }));
      };
      if (path === "/v1/devices/enroll") {
        const issued = await server.sign((JSON.parse(body) as { csr: string }).csr, `CN=${DEVICE}`);
        json({
          device: DEVICE,
          device_id: "d1",
          certificate: issued.pem,
          ca_chain: [server.caPem],
          serial_number: issued.serial,
          expiration: Math.floor(issued.notAfter / 1000),
          renew_after: Math.floor(issued.notAfter / 1000) - 600,
        });
      } else if (path === "/v1/devices/self/state" && !stateSent) {
        stateSent = true;
        json({ device: DEVICE, device_id: "d1", etag: "e1", artifacts: [] });
      } else if (path === "/v1/devices/self/state") {
        response.writeHead(304).end();
      } else {
        response.writeHead(204).end();
      }
    };
    const dir = mkdtempSync(join(tmpdir(), "keyward-agent-pacing-"));
    writeFileSync(join(dir, "ca.pem"), server.caPem);
    const config = parseAgentConfig(
      {
        server: server.url,
        ca_file: "ca.pem",
        device: DEVICE,
        bootstrap_token: `kwb.${"A".repeat(43)}`,
        state_dir: "state",
        poll_wait: "30s",
        artifacts: [],
      },
      dir,
    );
    const agent = new KeywardAgent({ config, log: createAgentLogger("silent") });
    await agent.open();
    const controller = new AbortController();
    const running = agent.run(controller.signal);
    const windowMs = 3 * MIN_ROUND_INTERVAL_MS;
    await delay(windowMs);
    controller.abort();
    await running;
    agent.close();

    const polls = server.requests.filter((line) => line === "GET /v1/devices/self/state").length;
    // One round per interval at most, and one more for the round in flight: an agent without
    // pacing sends hundreds of requests in this window.
    assert.ok(polls >= 2, `the agent polled ${polls} times`);
    assert.ok(
      polls <= windowMs / MIN_ROUND_INTERVAL_MS + 2,
      `the agent polled ${polls} times in ${windowMs} ms`,
    );
  });
});
