import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { parseCertificates } from "../../../../src/engines/pki/pem.ts";
import { ok } from "../fixtures.ts";
import {
  type AcmeTestServer,
  startAcmeServer,
  startHttpResponder,
  TEST_DOMAIN,
} from "./fixtures.ts";
import { RawAcmeClient } from "./jws-client.ts";

const FAST_BACKOFF = { backoffMin: 50, backoffMax: 500, backoffAttempts: 30 };
const HOUR_MS = 3600 * 1000;
/** Role `web`'s max_ttl in the fixtures: 2160 hours. */
const MAX_TTL_MS = 2160 * HOUR_MS;

/** Returns an ISO 8601 time `offsetMs` from now, on a whole second, as certificates store it. */
function at(offsetMs: number): string {
  return new Date(Math.floor((Date.now() + offsetMs) / 1000) * 1000).toISOString();
}

describe("ACME order notBefore and notAfter", () => {
  let server: AcmeTestServer;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;
  let raw: RawAcmeClient;

  before(async () => {
    server = await startAcmeServer();
    http = await startHttpResponder(server.httpPort);
    raw = new RawAcmeClient(server.t);
    await raw.init("/v1/pki/acme/directory");
    await raw.register();
  });

  after(async () => {
    await http?.close();
    await server?.close();
  });

  /** Orders a certificate for `name` with the given validity over http-01 and returns the leaf. */
  const issue = async (name: string, validity: { notBefore?: string; notAfter?: string }) => {
    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      ...FAST_BACKOFF,
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const order = await client.createOrder({
      identifiers: [{ type: "dns", value: name }],
      ...validity,
    });
    assert.equal(order.notBefore, validity.notBefore);
    assert.equal(order.notAfter, validity.notAfter);
    for (const authorization of await client.getAuthorizations(order)) {
      const challenge = authorization.challenges.find((item) => item.type === "http-01")!;
      http.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    }
    const [, csr] = await acme.crypto.createCsr({ commonName: name });
    const finalized = await client.finalizeOrder(order, csr);
    const [leaf] = parseCertificates(await client.getCertificate(finalized), "certificate");
    return leaf!;
  };

  const newOrder = (payload: Record<string, unknown>) =>
    raw.post(raw.directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: `bad.${TEST_DOMAIN}` }], ...payload },
    });

  it("issues with requested notAfter", async () => {
    const notAfter = at(48 * HOUR_MS);
    const leaf = await issue(`until.${TEST_DOMAIN}`, { notAfter });
    assert.equal(leaf.notAfter.toISOString(), notAfter);
  });

  it("issues with requested notBefore", async () => {
    const notBefore = at(2 * HOUR_MS);
    const notAfter = at(26 * HOUR_MS);
    const leaf = await issue(`later.${TEST_DOMAIN}`, { notBefore, notAfter });
    assert.equal(leaf.notBefore.toISOString(), notBefore);
    assert.equal(leaf.notAfter.toISOString(), notAfter);
  });

  it("lists requested validity in management API", async () => {
    const notAfter = at(72 * HOUR_MS);
    const response = await raw.post(raw.directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: `listed.${TEST_DOMAIN}` }], notAfter },
    });
    assert.equal(response.statusCode, 201, response.body);
    const id = String(response.headers.location).split("/").pop()!;
    const order = await ok(server.t, "GET", `/v1/pki/acme/mgmt/orders/${id}`);
    assert.equal(order.not_after, notAfter);
  });

  it("keeps distinct orders per validity", async () => {
    const identifiers = [{ type: "dns", value: `twice.${TEST_DOMAIN}` }];
    const first = await raw.post(raw.directory.newOrder!, {
      payload: { identifiers, notAfter: at(24 * HOUR_MS) },
    });
    const second = await raw.post(raw.directory.newOrder!, {
      payload: { identifiers, notAfter: at(30 * HOUR_MS) },
    });
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(second.statusCode, 201, second.body);
    assert.notEqual(first.headers.location, second.headers.location);
  });

  for (const [name, payload] of [
    ["fail notAfter past max TTL", { notAfter: at(MAX_TTL_MS + 24 * HOUR_MS) }],
    ["fail notBefore pushes past max", { notBefore: at(MAX_TTL_MS - HOUR_MS) }],
    ["fail notAfter before notBefore", { notBefore: at(5 * HOUR_MS), notAfter: at(HOUR_MS) }],
    ["fail notAfter in past", { notAfter: at(-HOUR_MS) }],
    ["fail notBefore far in past", { notBefore: at(-2 * HOUR_MS) }],
    ["fail date without zone", { notAfter: "2030-01-01T00:00:00" }],
    ["fail date not string", { notBefore: 1_700_000_000 }],
  ] as const) {
    it(name, async () => {
      const response = await newOrder(payload);
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().type, "urn:ietf:params:acme:error:malformed");
    });
  }
});
