import assert from "node:assert/strict";
import type { webcrypto } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import { ok } from "../fixtures.ts";
import {
  type AcmeTestServer,
  startAcmeServer,
  startHttpResponder,
  TEST_DOMAIN,
} from "./fixtures.ts";
import { type PostOptions, RawAcmeClient } from "./jws-client.ts";

const PROBLEM = "urn:ietf:params:acme:error:";

/** Makes a DER CSR (base64url) for `names` with a new P-256 key, or with `keys` when given. */
async function makeCsr(names: string[], keys?: webcrypto.CryptoKeyPair): Promise<string> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const pair =
    keys ??
    ((await crypto.subtle.generateKey(algorithm, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: names[0] ? `CN=${names[0]}` : "",
    keys: pair,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: "dns", value }))),
    ],
  });
  return Buffer.from(csr.rawData).toString("base64url");
}

interface Case {
  name: string;
  /** Directory field or resource the request goes to. */
  target: () => string;
  options: () => Promise<PostOptions> | PostOptions;
  status: number;
  type: string;
}

describe("ACME bad input", () => {
  let server: AcmeTestServer;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;
  const client = (): RawAcmeClient => state.client;
  const state = {} as {
    client: RawAcmeClient;
    readyOrder: string;
    finalizeUrl: string;
    accountPair: webcrypto.CryptoKeyPair;
  };

  /** Returns the number of orders of the test account, read through the management API. */
  const orderCount = async () => {
    const id = client().kid.split("/").pop()!;
    const account = await ok(server.t, "GET", `/v1/pki/acme/mgmt/accounts/${id}`);
    return account.orders.length as number;
  };

  before(async () => {
    server = await startAcmeServer();
    http = await startHttpResponder(server.httpPort);
    state.client = new RawAcmeClient(server.t);
    await client().init("/v1/pki/acme/directory");
    await client().register();

    // A ready order, for the finalize cases.
    const name = `ready.${TEST_DOMAIN}`;
    const created = await client().post(client().directory.newOrder!, {
      payload: { identifiers: [{ type: "dns", value: name }] },
    });
    assert.equal(created.statusCode, 201, created.body);
    state.readyOrder = String(created.headers.location);
    state.finalizeUrl = created.json().finalize;
    const authorization = (
      await client().post(created.json().authorizations[0], { payload: "" })
    ).json();
    const challenge = authorization.challenges.find((c: { type: string }) => c.type === "http-01");
    const thumbprint = await calculateJwkThumbprint(client().jwk);
    http.tokens.set(challenge.token, `${challenge.token}.${thumbprint}`);
    await client().post(challenge.url, { payload: {} });
    for (let attempt = 0; attempt < 100; attempt++) {
      const order = (await client().post(state.readyOrder, { payload: "" })).json();
      if (order.status === "ready") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async () => {
    await http?.close();
    await server?.close();
  });

  const newOrder = () => client().directory.newOrder!;
  const order = (identifiers: object[]) => ({ payload: { identifiers } });
  const cases: Case[] = [
    {
      name: "fail body is an array",
      target: newOrder,
      options: () => ({ payload: {}, body: [] }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail signature missing",
      target: newOrder,
      options: async () => {
        const jws = (await client().sign(
          newOrder(),
          order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        )) as Record<string, unknown>;
        delete jws.signature;
        return { payload: {}, body: jws };
      },
      status: 400,
      type: "malformed",
    },
    {
      name: "fail unprotected header present",
      target: newOrder,
      options: async () => {
        const jws = await client().sign(
          newOrder(),
          order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        );
        return { payload: {}, body: { ...jws, header: { kid: "x" } } };
      },
      status: 400,
      type: "malformed",
    },
    {
      name: "fail protected header not JSON",
      target: newOrder,
      options: () => ({
        payload: {},
        body: { protected: "bm90IGpzb24", payload: "", signature: "" },
      }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail body not JSON",
      target: newOrder,
      options: () => ({ payload: {}, body: "{not json" }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail wrong content type",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        contentType: "application/json",
      }),
      status: 415,
      type: "malformed",
    },
    {
      name: "fail algorithm none",
      target: newOrder,
      options: () => ({
        payload: {},
        body: {
          protected: Buffer.from(
            JSON.stringify({ alg: "none", url: newOrder(), kid: client().kid }),
          ).toString("base64url"),
          payload: "",
          signature: "",
        },
      }),
      status: 400,
      type: "badSignatureAlgorithm",
    },
    {
      name: "fail algorithm HS256",
      target: newOrder,
      options: () => ({
        payload: {},
        body: {
          protected: Buffer.from(
            JSON.stringify({ alg: "HS256", url: newOrder(), kid: client().kid }),
          ).toString("base64url"),
          payload: "",
          signature: "AAAA",
        },
      }),
      status: 400,
      type: "badSignatureAlgorithm",
    },
    {
      name: "fail unknown nonce",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        header: { nonce: "bm90LWEtbm9uY2U" },
      }),
      status: 400,
      type: "badNonce",
    },
    {
      name: "fail nonce missing",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        header: { nonce: undefined },
      }),
      status: 400,
      type: "badNonce",
    },
    {
      name: "fail url of another resource",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        header: { url: client().directory.newAccount },
      }),
      status: 403,
      type: "unauthorized",
    },
    {
      name: "fail both kid and jwk",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        header: { jwk: client().jwk },
      }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail jwk on newOrder",
      target: newOrder,
      options: () => ({ ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]), useJwk: true }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail kid of unknown account",
      target: newOrder,
      options: () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        header: { kid: client().kid.replace(/[^/]+$/, "AAAAAAAAAAAAAAAAAAAAAA") },
      }),
      status: 400,
      type: "accountDoesNotExist",
    },
    {
      name: "fail signature by another key",
      target: newOrder,
      options: async () => ({
        ...order([{ type: "dns", value: `a.${TEST_DOMAIN}` }]),
        signingKey: (await generateKeyPair("ES256")).privateKey,
      }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail private key in jwk",
      target: () => client().directory.newAccount!,
      options: () => ({
        payload: {},
        useJwk: true,
        header: { jwk: { ...client().jwk, d: "AAAA" } },
      }),
      status: 400,
      type: "badPublicKey",
    },
    {
      name: "fail onlyReturnExisting for new key",
      target: () => client().directory.newAccount!,
      options: async () => {
        const other = await generateKeyPair("ES256", { extractable: true });
        return {
          payload: { onlyReturnExisting: true },
          useJwk: true,
          header: { jwk: await exportJWK(other.publicKey) },
          signingKey: other.privateKey,
        };
      },
      status: 400,
      type: "accountDoesNotExist",
    },
    {
      name: "fail contact not mailto",
      target: () => client().kid,
      options: () => ({ payload: { contact: ["tel:+15550100"] } }),
      status: 400,
      type: "unsupportedContact",
    },
    {
      name: "fail name outside role",
      target: newOrder,
      options: () => order([{ type: "dns", value: "www.example.org" }]),
      status: 400,
      type: "rejectedIdentifier",
    },
    {
      name: "fail one of two names outside role",
      target: newOrder,
      options: () =>
        order([
          { type: "dns", value: `ok.${TEST_DOMAIN}` },
          { type: "dns", value: "bad.example.org" },
        ]),
      status: 400,
      type: "rejectedIdentifier",
    },
    {
      name: "fail invalid DNS name",
      target: newOrder,
      options: () => order([{ type: "dns", value: "bad_name..acme.test" }]),
      status: 400,
      type: "rejectedIdentifier",
    },
    {
      name: "fail unsupported identifier type",
      target: newOrder,
      options: () => order([{ type: "email", value: `ops@${TEST_DOMAIN}` }]),
      status: 400,
      type: "unsupportedIdentifier",
    },
    {
      name: "fail empty identifiers",
      target: newOrder,
      options: () => order([]),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail notAfter requested",
      target: newOrder,
      options: () => ({
        payload: {
          identifiers: [{ type: "dns", value: `a.${TEST_DOMAIN}` }],
          notAfter: "2030-01-01T00:00:00Z",
        },
      }),
      status: 400,
      type: "malformed",
    },
    {
      name: "fail CSR for other name",
      target: () => state.finalizeUrl,
      options: async () => ({ payload: { csr: await makeCsr([`other.${TEST_DOMAIN}`]) } }),
      status: 400,
      type: "badCSR",
    },
    {
      name: "fail CSR with extra name",
      target: () => state.finalizeUrl,
      options: async () => ({
        payload: { csr: await makeCsr([`ready.${TEST_DOMAIN}`, `extra.${TEST_DOMAIN}`]) },
      }),
      status: 400,
      type: "badCSR",
    },
    {
      name: "fail CSR not DER",
      target: () => state.finalizeUrl,
      options: () => ({ payload: { csr: Buffer.from("not a csr").toString("base64url") } }),
      status: 400,
      type: "badCSR",
    },
    {
      name: "fail revoke certificate not issued here",
      target: () => client().directory.revokeCert!,
      options: async () => {
        const pem = server.rootPem.replace(/-----[A-Z ]+-----|\s/g, "");
        return { payload: { certificate: Buffer.from(pem, "base64").toString("base64url") } };
      },
      status: 403,
      type: "unauthorized",
    },
    {
      name: "fail revoke with bad reason",
      target: () => client().directory.revokeCert!,
      options: () => ({ payload: { certificate: "AAAA", reason: 7 } }),
      status: 400,
      type: "badRevocationReason",
    },
  ];

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const ordersBefore = await orderCount();
      const response = await client().post(testCase.target(), await testCase.options());
      assert.equal(response.statusCode, testCase.status, response.body);
      assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
      assert.equal(response.json().type, PROBLEM + testCase.type, response.body);
      assert.ok(response.headers["replay-nonce"], "every problem carries a fresh nonce");
      assert.equal(await orderCount(), ordersBefore);
      const ready = (await client().post(state.readyOrder, { payload: "" })).json();
      assert.equal(ready.status, "ready");
    });
  }

  it("rejects replayed nonce", async () => {
    const jws = await client().sign(state.readyOrder, { payload: "" });
    const first = await client().post(state.readyOrder, { payload: "", body: jws });
    assert.equal(first.statusCode, 200, first.body);
    const replayed = await client().post(state.readyOrder, { payload: "", body: jws });
    assert.equal(replayed.statusCode, 400);
    assert.equal(replayed.json().type, `${PROBLEM}badNonce`);
    assert.ok(replayed.headers["replay-nonce"]);
  });

  it("lists accepted algorithms on badSignatureAlgorithm", async () => {
    const response = await client().post(newOrder(), {
      payload: {},
      body: {
        protected: Buffer.from(
          JSON.stringify({ alg: "RS1", url: newOrder(), kid: client().kid }),
        ).toString("base64url"),
        payload: "",
        signature: "",
      },
    });
    assert.ok(response.json().algorithms.includes("ES256"));
    assert.ok(response.json().algorithms.includes("EdDSA"));
  });

  it("rejects CSR with account key", async () => {
    const exported = await crypto.subtle.exportKey("jwk", client().privateKey);
    const privateKey = await crypto.subtle.importKey(
      "jwk",
      exported,
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign"],
    );
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { ...client().jwk, key_ops: ["verify"] } as webcrypto.JsonWebKey,
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["verify"],
    );
    const csr = await makeCsr([`ready.${TEST_DOMAIN}`], { privateKey, publicKey });
    const response = await client().post(state.finalizeUrl, { payload: { csr } });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().type, `${PROBLEM}badCSR`);
    assert.match(response.json().detail, /account key/);
  });

  it("rejects finalize of pending order", async () => {
    const created = await client().post(
      newOrder(),
      order([{ type: "dns", value: `pending.${TEST_DOMAIN}` }]),
    );
    const response = await client().post(created.json().finalize, {
      payload: { csr: await makeCsr([`pending.${TEST_DOMAIN}`]) },
    });
    assert.equal(response.statusCode, 403);
    assert.equal(response.json().type, `${PROBLEM}orderNotReady`);
  });

  it("keeps directory URLs absolute", async () => {
    for (const url of Object.values(client().directory).filter(
      (value) => typeof value === "string",
    )) {
      assert.match(url, /^http:\/\/localhost:80\/v1\/pki\/acme\//);
    }
    const response = await server.t.request({
      method: "HEAD",
      url: "/v1/pki/acme/new-nonce",
      token: null,
    });
    assert.equal(response.statusCode, 200);
    assert.match(
      String(response.headers.link),
      /<http:\/\/localhost:80\/v1\/pki\/acme\/directory>;rel="index"/,
    );
    assert.equal(response.headers["cache-control"], "no-store");
  });
});
