import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

/**
 * The router ends the path at a `#` in the request target, but the policy
 * check matches the whole target, fragment included. Without the rejection
 * of such targets, a token denied `transit/keys/secret` but granted
 * `transit/keys/*` would read the key as `/v1/transit/keys/secret#x`,
 * because `transit/keys/secret#x` matches the glob and not the deny.
 */

const POLICY = `
path "transit/keys/*" {
  capabilities = ["read"]
}
path "transit/keys/secret" {
  capabilities = ["deny"]
}
path "transit/encrypt/*" {
  capabilities = ["update"]
}
path "transit/encrypt/secret" {
  capabilities = ["deny"]
}
`;

/** Sends one HTTP/1.1 request with `target` written as given, and returns the status code. */
function sendRaw(
  port: number,
  method: string,
  target: string,
  token: string,
  body = "",
): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    socket.on("end", () => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`no HTTP status line in ${JSON.stringify(received.slice(0, 80))}`));
    });
    socket.on("error", reject);
    const headers = [
      "host: 127.0.0.1",
      "connection: close",
      "content-type: application/json",
      `content-length: ${Buffer.byteLength(body)}`,
      `x-vault-token: ${token}`,
    ];
    socket.write(`${method} ${target} HTTP/1.1\r\n${headers.join("\r\n")}\r\n\r\n${body}`);
  });
}

describe("request target with a fragment", () => {
  let t: TestApp;
  let port = 0;
  let token = "";

  before(async () => {
    t = await createTestApp();
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    port = (t.app.server.address() as { port: number }).port;
    for (const name of ["secret", "open"]) {
      const created = await t.request({
        method: "POST",
        url: `/v1/transit/keys/${name}`,
        payload: { type: "aes256-gcm96" },
      });
      assert.equal(created.statusCode, 200, created.body);
    }
    const written = await t.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/fragment",
      payload: { policy: POLICY },
    });
    assert.equal(written.statusCode, 204, written.body);
    const issued = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["fragment"] },
    });
    assert.equal(issued.statusCode, 200, issued.body);
    token = issued.json().auth.client_token;
  });
  after(() => t.close());

  it("denied key stays denied without fragment", async () => {
    assert.equal(await sendRaw(port, "GET", "/v1/transit/keys/secret", token), 403);
    assert.equal(await sendRaw(port, "GET", "/v1/transit/keys/open", token), 200);
  });

  it("read of denied key with fragment", async () => {
    const status = await sendRaw(port, "GET", "/v1/transit/keys/secret#x", token);
    assert.ok(status === 403 || status === 400, `GET /v1/transit/keys/secret#x returned ${status}`);
  });

  it("HEAD of denied key with fragment", async () => {
    const status = await sendRaw(port, "HEAD", "/v1/transit/keys/secret#x", token);
    assert.ok(
      status === 403 || status === 400,
      `HEAD /v1/transit/keys/secret#x returned ${status}`,
    );
  });

  it("encrypt with denied key and fragment", async () => {
    const status = await sendRaw(
      port,
      "POST",
      "/v1/transit/encrypt/secret#x",
      token,
      JSON.stringify({ plaintext: "aGVsbG8=" }),
    );
    assert.ok(
      status === 403 || status === 400,
      `POST /v1/transit/encrypt/secret#x returned ${status}`,
    );
  });
});
