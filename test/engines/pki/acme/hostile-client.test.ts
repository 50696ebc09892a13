import assert from "node:assert/strict";
import type { webcrypto } from "node:crypto";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { calculateJwkThumbprint, exportJWK, FlattenedSign, generateKeyPair, type JWK } from "jose";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import { ok } from "../fixtures.ts";
import {
  type AcmeTestServer,
  assertProblems,
  type ProblemCase,
  startAcmeServer,
  startHttpResponder,
  TEST_DOMAIN,
} from "./fixtures.ts";
import { RawAcmeClient } from "./jws-client.ts";

const PROBLEM = "urn:ietf:params:acme:error:";

/** Makes a DER CSR (base64url) for DNS `names` with a new key of `algorithm`. */
async function makeCsr(
  names: string[],
  algorithm:
    | { name: "ECDSA"; namedCurve: string; hash: string }
    | {
        name: "RSASSA-PKCS1-v1_5";
        modulusLength: number;
        publicExponent: Uint8Array;
        hash: string;
      },
): Promise<string> {
  const keys = (await crypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns", value }))),
    ],
  });
  return Buffer.from(csr.rawData).toString("base64url");
}

const P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const RSA2048 = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
} as const;

describe("ACME hostile client", () => {
  let server: AcmeTestServer;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;
  let client: RawAcmeClient;
  /** A listener on 127.0.0.2, outside the validator's allowed networks, that counts connections. */
  let forbidden: Server;
  let forbiddenHits = 0;

  /** Orders `name`, responds to its http-01 challenge and waits until the order is ready. */
  async function readyOrder(acme: RawAcmeClient, name: string) {
    const created = await acme.post(acme.directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: name }] },
    });
    assert.equal(created.statusCode, 201, created.body);
    const orderUrl = String(created.headers.location);
    const authorization = (
      await acme.post(created.json().authorizations[0], { payload: "" })
    ).json();
    const challenge = authorization.challenges.find((c: { type: string }) => c.type === "http-01");
    http.tokens.set(
      challenge.token,
      `${challenge.token}.${await calculateJwkThumbprint(acme.jwk)}`,
    );
    await acme.post(challenge.url, { payload: {} });
    for (let attempt = 0; attempt < 200; attempt++) {
      const order = (await acme.post(orderUrl, { payload: "" })).json();
      if (order.status === "ready") return { url: orderUrl, finalize: order.finalize as string };
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`order for ${name} did not become ready`);
  }

  /** Waits until the challenge at `url` is no longer pending or processing, and returns it. */
  async function settledChallenge(acme: RawAcmeClient, url: string) {
    for (let attempt = 0; attempt < 200; attempt++) {
      const challenge = (await acme.post(url, { payload: "" })).json();
      if (challenge.status !== "pending" && challenge.status !== "processing") return challenge;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error("challenge did not settle");
  }

  before(async () => {
    server = await startAcmeServer({
      acme: { allowed_roles: ["web", "ecweb"], allowed_networks: ["127.0.0.1/32"] },
    });
    await ok(server.t, "POST", "/v1/pki/roles/ecweb", {
      allowed_domains: TEST_DOMAIN,
      allow_subdomains: true,
      key_type: "ec",
      key_bits: 256,
    });
    http = await startHttpResponder(server.httpPort);
    forbidden = createServer((_request, response) => {
      forbiddenHits++;
      response.writeHead(200).end("x");
    });
    await new Promise<void>((resolve) => forbidden.listen(server.httpPort, "127.0.0.2", resolve));
    client = new RawAcmeClient(server.t);
    await client.init("/v1/pki/acme/directory");
    await client.register();
  });

  after(async () => {
    await new Promise((resolve) => forbidden?.close(resolve));
    await http?.close();
    await server?.close();
  });

  for (const [value, type] of [
    ["0x7f.1", "rejectedIdentifier"],
    ["2130706433", "rejectedIdentifier"],
    [`a.${TEST_DOMAIN}/x`, "rejectedIdentifier"],
    [`a.${TEST_DOMAIN}#x`, "rejectedIdentifier"],
    [`a.*.${TEST_DOMAIN}`, "rejectedIdentifier"],
    [`*.*.${TEST_DOMAIN}`, "rejectedIdentifier"],
    [`a.${TEST_DOMAIN}.evil.test`, "rejectedIdentifier"],
  ] as const) {
    it(`rejects DNS identifier ${JSON.stringify(value)}`, async () => {
      const response = await client.post(client.directory.newOrder!, {
        payload: { identifiers: [{ type: "dns", value }] },
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().type, PROBLEM + type, response.body);
    });
  }

  it("stores upper case identifiers lower case", async () => {
    const response = await client.post(client.directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: `UPPER.${TEST_DOMAIN.toUpperCase()}` }] },
    });
    assert.equal(response.statusCode, 201, response.body);
    assert.deepEqual(response.json().identifiers, [{ type: "dns", value: `upper.${TEST_DOMAIN}` }]);
  });

  it("keeps order ready on CSR key the role forbids", async () => {
    const ec = new RawAcmeClient(server.t);
    await ec.init("/v1/pki/roles/ecweb/acme/directory");
    await ec.register();
    const name = `eckey.${TEST_DOMAIN}`;
    const order = await readyOrder(ec, name);

    for (const csr of [
      await makeCsr([name], RSA2048),
      await makeCsr([name], { ...P256, namedCurve: "P-384", hash: "SHA-384" }),
    ]) {
      const rejected = await ec.post(order.finalize, { payload: { csr } });
      assert.equal(rejected.statusCode, 400, rejected.body);
      assert.equal(rejected.json().type, `${PROBLEM}badCSR`, rejected.body);
      const after = (await ec.post(order.url, { payload: "" })).json();
      assert.equal(after.status, "ready");
    }

    const issued = await ec.post(order.finalize, { payload: { csr: await makeCsr([name], P256) } });
    assert.equal(issued.statusCode, 200, issued.body);
    assert.equal(issued.json().status, "valid");
  });

  it("refuses redirect outside allowed networks", async () => {
    const name = `redirect.${TEST_DOMAIN}`;
    const created = await client.post(client.directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: name }] },
    });
    const authorization = (
      await client.post(created.json().authorizations[0], { payload: "" })
    ).json();
    const challenge = authorization.challenges.find((c: { type: string }) => c.type === "http-01");

    // The responder on 127.0.0.1 redirects to 127.0.0.2, written in several forms.
    const targets = [
      `http://127.0.0.2:${server.httpPort}/`,
      `http://[::ffff:127.0.0.2]:${server.httpPort}/`,
      `http://0x7f000002:${server.httpPort}/`,
    ];
    let hop = 0;
    const original = http.server.listeners("request");
    http.server.removeAllListeners("request");
    http.server.on("request", (_request, response) => {
      response.writeHead(302, { location: targets[Math.min(hop++, targets.length - 1)] }).end();
    });
    try {
      await client.post(challenge.url, { payload: {} });
      const settled = await settledChallenge(client, challenge.url);
      assert.equal(settled.status, "invalid");
      assert.equal(settled.error.type, `${PROBLEM}connection`, JSON.stringify(settled.error));
    } finally {
      http.server.removeAllListeners("request");
      for (const listener of original) http.server.on("request", listener as never);
    }
    assert.equal(forbiddenHits, 0);
  });

  it("refuses IP identifier outside allowed networks", async () => {
    const created = await client.post(client.directory.newOrder!, {
      payload: { identifiers: [{ type: "ip", value: "127.0.0.2" }] },
    });
    assert.equal(created.statusCode, 201, created.body);
    const authorization = (
      await client.post(created.json().authorizations[0], { payload: "" })
    ).json();
    const challenge = authorization.challenges.find((c: { type: string }) => c.type === "http-01");
    await client.post(challenge.url, { payload: {} });
    const settled = await settledChallenge(client, challenge.url);
    assert.equal(settled.status, "invalid");
    assert.equal(forbiddenHits, 0);
  });

  describe("key rollover", () => {
    /** Builds the inner keyChange JWS, signed by `signer` and carrying `jwk`. */
    async function inner(options: {
      url: string;
      jwk: JWK;
      signer: webcrypto.CryptoKey;
      account: string;
      oldKey: JWK;
      header?: Record<string, unknown>;
    }) {
      const payload = new TextEncoder().encode(
        JSON.stringify({ account: options.account, oldKey: options.oldKey }),
      );
      return new FlattenedSign(payload)
        .setProtectedHeader({ alg: "ES256", jwk: options.jwk, url: options.url, ...options.header })
        .sign(options.signer);
    }

    async function newKey() {
      const pair = await generateKeyPair("ES256", { extractable: true });
      return { pair, jwk: await exportJWK(pair.publicKey) };
    }

    it("rejects rollover tricks", async () => {
      const acme = new RawAcmeClient(server.t);
      await acme.init("/v1/pki/acme/directory");
      await acme.register();
      const other = new RawAcmeClient(server.t);
      await other.init("/v1/pki/acme/directory");
      await other.register();
      const url = acme.directory.keyChange!;
      const fresh = await newKey();
      const stranger = await newKey();

      const cases: ProblemCase[] = [
        [
          "inner signed by another key",
          await inner({
            url,
            jwk: fresh.jwk,
            signer: stranger.pair.privateKey,
            account: acme.kid,
            oldKey: acme.jwk,
          }),
          400,
          "malformed",
        ],
        [
          "oldKey of another account",
          await inner({
            url,
            jwk: fresh.jwk,
            signer: fresh.pair.privateKey,
            account: acme.kid,
            oldKey: other.jwk,
          }),
          403,
          "unauthorized",
        ],
        [
          "account of another account",
          await inner({
            url,
            jwk: fresh.jwk,
            signer: fresh.pair.privateKey,
            account: other.kid,
            oldKey: acme.jwk,
          }),
          403,
          "unauthorized",
        ],
        [
          "inner url differs",
          await inner({
            url: `${url}/x`,
            jwk: fresh.jwk,
            signer: fresh.pair.privateKey,
            account: acme.kid,
            oldKey: acme.jwk,
          }),
          400,
          "malformed",
        ],
        [
          "inner has a nonce",
          await inner({
            url,
            jwk: fresh.jwk,
            signer: fresh.pair.privateKey,
            account: acme.kid,
            oldKey: acme.jwk,
            header: { nonce: await acme.nonce() },
          }),
          400,
          "malformed",
        ],
        [
          "new key of another account",
          await inner({
            url,
            jwk: other.jwk,
            signer: other.privateKey,
            account: acme.kid,
            oldKey: acme.jwk,
          }),
          409,
          "malformed",
        ],
      ];
      await assertProblems(acme, url, cases);

      // After all rejections the old key still works and the new key is unknown.
      const read = await acme.post(acme.kid, { payload: "" });
      assert.equal(read.statusCode, 200, read.body);
      const lookup = await acme.post(acme.directory.newAccount!, {
        payload: { onlyReturnExisting: true },
        useJwk: true,
        header: { jwk: fresh.jwk },
        signingKey: fresh.pair.privateKey,
      });
      assert.equal(lookup.statusCode, 400, lookup.body);
      assert.equal(lookup.json().type, `${PROBLEM}accountDoesNotExist`);
    });

    it("moves account to new key", async () => {
      const acme = new RawAcmeClient(server.t);
      await acme.init("/v1/pki/acme/directory");
      await acme.register();
      const url = acme.directory.keyChange!;
      const fresh = await newKey();
      const changed = await acme.post(url, {
        payload: await inner({
          url,
          jwk: fresh.jwk,
          signer: fresh.pair.privateKey,
          account: acme.kid,
          oldKey: acme.jwk,
        }),
      });
      assert.equal(changed.statusCode, 200, changed.body);

      const oldKeyRead = await acme.post(acme.kid, { payload: "" });
      assert.equal(oldKeyRead.statusCode, 400, oldKeyRead.body);
      assert.equal(oldKeyRead.json().type, `${PROBLEM}malformed`, oldKeyRead.body);

      const newKeyRead = await acme.post(acme.kid, {
        payload: "",
        signingKey: fresh.pair.privateKey,
      });
      assert.equal(newKeyRead.statusCode, 200, newKeyRead.body);
    });
  });
});
