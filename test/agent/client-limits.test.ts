import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DeviceApiError, DeviceClient, MAX_RESPONSE_BYTES } from "../../src/agent/client.ts";
import { HostileServer } from "./hostile-server.ts";

/** Sends one enrolment-style request (no client certificate) and returns the error it fails with. */
async function failureOf(server: HostileServer, timeoutMs = 30_000): Promise<DeviceApiError> {
  const client = new DeviceClient(new URL(server.url), Buffer.from(server.caPem));
  try {
    await client.request("POST", "/v1/devices/enroll", {
      clientCertificate: false,
      body: { bootstrap_token: "kwb.not-a-real-token" },
      timeoutMs,
    });
  } catch (error) {
    assert.ok(error instanceof DeviceApiError, `expected a DeviceApiError, got ${error}`);
    return error;
  } finally {
    client.close();
  }
  assert.fail("the request succeeded");
}

describe("device client against a hostile server", () => {
  const server = new HostileServer();
  before(() => server.start());
  after(() => server.stop());

  it("times out a body that trickles in", async () => {
    server.handler = (_request, _body, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.write("[");
      // One byte well within any idle timeout, forever.
      const timer = setInterval(() => response.write(" "), 100);
      response.on("close", () => clearInterval(timer));
    };
    const error = await failureOf(server, 1500);
    assert.match(error.message, /timed out after 1\.5 s/);
    assert.equal(error.transient, true);
  });

  it("times out a server that never answers", async () => {
    server.handler = () => undefined;
    const error = await failureOf(server, 1000);
    assert.match(error.message, /timed out after 1 s/);
  });

  it("rejects a body larger than the limit", async () => {
    server.handler = (_request, _body, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent <= MAX_RESPONSE_BYTES + chunk.length) {
          sent += chunk.length;
          if (!response.write(chunk)) {
            response.once("drain", pump);
            return;
          }
        }
        response.end("1");
      };
      response.on("error", () => undefined);
      pump();
    };
    const error = await failureOf(server);
    assert.match(error.message, /larger than \d+ bytes/);
    assert.equal(error.transient, true);
  });

  it("rejects a Content-Length above the limit", async () => {
    server.handler = (_request, _body, response) => {
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": String(MAX_RESPONSE_BYTES + 1),
      });
      response.write("{");
      response.on("error", () => undefined);
    };
    const error = await failureOf(server);
    assert.match(error.message, /larger than \d+ bytes/);
  });

  it("still returns a normal response", async () => {
    server.handler = (_request, _body, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ request_id: "r1", data: { ok: true } }));
    };
    const client = new DeviceClient(new URL(server.url), Buffer.from(server.caPem));
    try {
      const result = await client.request("POST", "/v1/devices/enroll", {
        clientCertificate: false,
        body: {},
      });
      assert.deepEqual(result, { status: 200, body: { ok: true } });
    } finally {
      client.close();
    }
  });
});
