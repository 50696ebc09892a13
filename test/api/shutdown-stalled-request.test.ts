import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { startDevServer } from "../helpers/server-process.ts";

// A SIGTERM must stop the server with status 0 even while a client keeps a
// connection open with an incomplete request. The server waits for requests in
// flight, and a request whose headers or body never finish keeps that wait
// open until the 20 s shutdown limit, after which the process exits with 1.

/** Opens a connection to the server, sends `text`, and leaves the request unfinished. */
async function sendPartialRequest(address: string, text: string): Promise<Socket> {
  const url = new URL(address);
  const socket = connect(Number(url.port), url.hostname);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  await new Promise<void>((resolve) => socket.write(text, () => resolve()));
  return socket;
}

/** Waits 300 ms so that the server reads the partial request before the signal arrives. */
function waitForRead(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 300));
}

describe("shutdown with stalled request", () => {
  it("exits 0 with partial headers", async () => {
    const server = await startDevServer();
    const socket = await sendPartialRequest(
      server.address,
      "GET /v1/sys/health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    );
    await waitForRead();

    const status = await server.stop();
    socket.destroy();

    assert.equal(status, 0, server.output().slice(-600));
  });

  it("exits 0 with partial body", async () => {
    const server = await startDevServer();
    const socket = await sendPartialRequest(
      server.address,
      [
        "POST /v1/transit/keys/stalled HTTP/1.1",
        "Host: 127.0.0.1",
        `X-Vault-Token: ${server.rootToken}`,
        "Content-Type: application/json",
        "Content-Length: 100",
        "",
        '{"type":',
      ].join("\r\n"),
    );
    await waitForRead();

    const status = await server.stop();
    socket.destroy();

    assert.equal(status, 0, server.output().slice(-600));
  });
});
