import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { describe, it } from "node:test";
import { type ServerProcess, startDevServer } from "../helpers/server-process.ts";

// Clients keep their connections alive between requests. A server that
// stops with requests in flight must close each connection once its
// request is served, or the shutdown waits until the connections idle
// out, past the server's shutdown limit (which exits with status 1).

/** Requests in flight when the server receives SIGTERM. */
const IN_FLIGHT = 100;

async function call(server: ServerProcess, method: string, path: string, body?: object) {
  const response = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, text };
}

describe("server shutdown", () => {
  it("closes kept-alive connections and exits 0", async () => {
    const server = await startDevServer();
    try {
      // The dev server mounts transit at transit/.
      const created = await call(server, "POST", "transit/keys/stop", {});
      assert.equal(created.status, 200, created.text);
      const plaintext = Buffer.alloc(64, 1).toString("base64");
      const inFlight = Array.from({ length: IN_FLIGHT }, () =>
        call(server, "POST", "transit/encrypt/stop", { plaintext }).catch(() => undefined),
      );
      // Stop once the first reply shows the requests are being served.
      await Promise.race(inFlight);
      const code = await server.stop("SIGTERM");
      await Promise.all(inFlight);
      assert.equal(code, 0, server.output());
    } finally {
      await server.stop("SIGKILL");
      rmSync(server.dataDir, { recursive: true, force: true });
    }
  });
});
