import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import { createFastify } from "../../src/api/app.ts";
import { registerAuditHooks } from "../../src/api/routes/sys-audit.ts";
import type { AuditBroker } from "../../src/audit/broker.ts";
import { KeywardError } from "../../src/errors.ts";

// When no device can write a request's response record, the response is
// replaced by `audit_failure`. It must have the same error shape as every
// other error, not Fastify's default one.
describe("response record failure", () => {
  let app: FastifyInstance;
  let responses = 0;

  before(async () => {
    const broker = {
      async logRequest() {},
      async logResponse() {
        responses += 1;
        throw new KeywardError("audit_failure", "no audit device could record the request");
      },
    } as unknown as AuditBroker;
    app = createFastify();
    registerAuditHooks(app, broker);
    app.get("/v1/sys/raw", async (_request, reply) => reply.type("text/plain").send("raw body"));
    app.post("/v1/transit/encrypt/:name", async () => ({ data: { ciphertext: "keyward:v1:abc" } }));
    await app.ready();
  });
  after(async () => {
    await app.close();
  });

  it("sends the error in Keyward's shape", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/v1/transit/encrypt/app",
      payload: { plaintext: "aGk=" },
    });
    assert.equal(response.statusCode, 500);
    const body = response.json();
    assert.equal(body.code, "audit_failure");
    assert.deepEqual(body.errors, ["no audit device could record the request"]);
    assert.equal(typeof body.request_id, "string");
    assert.equal(body.ciphertext, undefined);
    assert.equal(responses, 1);
  });

  it("replaces a non-JSON body with a JSON error", async () => {
    const response = await app.inject({ method: "GET", url: "/v1/sys/raw" });
    assert.equal(response.statusCode, 500);
    assert.match(String(response.headers["content-type"]), /^application\/json/);
    assert.equal(response.json().code, "audit_failure");
  });
});
