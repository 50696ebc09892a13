import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

// The router serves `GET http://host/v1/sys/... HTTP/1.1` (the
// absolute-form request target) as `/v1/sys/...`. The policy check must not
// match it as another path, or `path "*"` with a deny on `sys/*` would
// allow it.
const POLICY = `path "*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "sys/*" {
  capabilities = ["deny"]
}
`;

/** Sends one raw HTTP/1.1 request and returns the status code and body. */
async function rawRequest(port: number, requestLine: string, token: string) {
  const socket = connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.write(
    `${requestLine}\r\nHost: 127.0.0.1\r\nX-Vault-Token: ${token}\r\nConnection: close\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    socket.on("end", resolve);
    socket.on("error", reject);
  });
  const text = Buffer.concat(chunks).toString("utf8");
  const status = Number(text.slice(9, 12));
  const body = text.slice(text.indexOf("\r\n\r\n") + 4);
  return { status, body };
}

describe("absolute-form request targets", () => {
  let app: TestApp;
  let port: number;
  let token: string;

  before(async () => {
    app = await createTestApp();
    await app.app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.app.server.address();
    port = typeof address === "object" && address !== null ? address.port : 0;
    const written = await app.request({
      method: "PUT",
      url: "/v1/sys/policies/acl/all-but-sys",
      payload: { policy: POLICY },
    });
    assert.equal(written.statusCode, 204);
    const created = await app.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["all-but-sys"] },
    });
    token = created.json().auth.client_token;
  });
  after(async () => {
    await app.close();
  });

  it("denies the path in origin form", async () => {
    const response = await rawRequest(port, "GET /v1/sys/policies/acl/all-but-sys HTTP/1.1", token);
    assert.equal(response.status, 403);
  });

  it("rejects the path in absolute form", async () => {
    for (const target of [
      "http://127.0.0.1/v1/sys/policies/acl/all-but-sys",
      "HTTP://x/v1/sys/policies/acl/all-but-sys",
      "https://x:1/v1/sys/mounts",
    ]) {
      const response = await rawRequest(port, `GET ${target} HTTP/1.1`, token);
      assert.equal(response.status, 400, target);
      assert.equal(JSON.parse(response.body).code, "invalid_request", target);
      assert.equal(response.body.includes("capabilities"), false, target);
    }
  });

  it("records the attempt under its path", async () => {
    const found = await app.keyward.audit.search({
      path_prefix: "sys/mounts",
      type: "response",
    });
    const statuses = found.records.map(
      (record) => (record as { response?: { status?: number } }).response?.status,
    );
    assert.ok(statuses.includes(400));
  });
});
