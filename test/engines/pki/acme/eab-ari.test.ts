import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { certificateId } from "../../../../src/engines/pki/acme/renewal-info.ts";
import { parseCertificates } from "../../../../src/engines/pki/pem.ts";
import { ok } from "../fixtures.ts";
import {
  type AcmeTestServer,
  startAcmeServer,
  startHttpResponder,
  TEST_DOMAIN,
} from "./fixtures.ts";

const FAST_BACKOFF = { backoffMin: 50, backoffMax: 500, backoffAttempts: 30 };

describe("ACME external account binding and renewal information", () => {
  let server: AcmeTestServer;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;

  before(async () => {
    server = await startAcmeServer({ acme: { eab_policy: "new-account-required" } });
    http = await startHttpResponder(server.httpPort);
  });

  after(async () => {
    await http?.close();
    await server?.close();
  });

  const client = async (eab?: { kid: string; hmacKey: string }) =>
    new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      ...(eab ? { externalAccountBinding: eab } : {}),
      ...FAST_BACKOFF,
    });

  const issue = async (eab: { kid: string; hmacKey: string }, name: string) => {
    const [, csr] = await acme.crypto.createCsr({ commonName: name });
    return (await client(eab)).auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        http.tokens.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async () => undefined,
    });
  };

  const newEab = async () => {
    const created = await ok(server.t, "POST", "/v1/pki/acme/new-eab");
    return { kid: created.id as string, hmacKey: created.key as string };
  };

  it("advertises required binding in directory", async () => {
    const response = await server.t.request({
      method: "GET",
      url: "/v1/pki/acme/directory",
      token: null,
    });
    assert.equal(response.json().meta.externalAccountRequired, true);
    assert.match(response.json().renewalInfo, /\/v1\/pki\/acme\/renewal-info$/);
  });

  it("rejects account without binding", async () => {
    await assert.rejects(
      (await client()).createAccount({ termsOfServiceAgreed: true }),
      /external account binding/,
    );
  });

  it("creates account with binding once", async () => {
    const eab = await newEab();
    await (await client(eab)).createAccount({ termsOfServiceAgreed: true });
    await assert.rejects(
      (await client(eab)).createAccount({ termsOfServiceAgreed: true }),
      /already bound/,
    );
    const listed = await server.t.request({ method: "GET", url: "/v1/pki/eab?list=true" });
    assert.equal(listed.statusCode, 200, listed.body);
    assert.equal(listed.json().data.key_info[eab.kid].used, true);
    assert.equal(listed.json().data.key_info[eab.kid].key, undefined);
  });

  it("rejects binding with wrong key", async () => {
    const eab = await newEab();
    const wrong = { kid: eab.kid, hmacKey: Buffer.alloc(32, 7).toString("base64url") };
    await assert.rejects(
      (await client(wrong)).createAccount({ termsOfServiceAgreed: true }),
      /does not verify/,
    );
  });

  it("rejects binding of role directory", async () => {
    const created = await ok(server.t, "POST", "/v1/pki/roles/web/acme/new-eab");
    assert.equal(created.acme_directory, "roles/web/acme/directory");
    await assert.rejects(
      (await client({ kid: created.id, hmacKey: created.key })).createAccount({
        termsOfServiceAgreed: true,
      }),
      /no EAB key of this directory/,
    );
  });

  it("deletes EAB key", async () => {
    const eab = await newEab();
    const deleted = await server.t.request({ method: "DELETE", url: `/v1/pki/eab/${eab.kid}` });
    assert.equal(deleted.statusCode, 204);
    await assert.rejects(
      (await client(eab)).createAccount({ termsOfServiceAgreed: true }),
      /no EAB key/,
    );
  });

  it("suggests renewal window and earlier after revocation", async () => {
    const chain = await issue(await newEab(), `ari.${TEST_DOMAIN}`);
    const [leaf] = parseCertificates(chain, "certificate");
    const id = certificateId(leaf!)!;
    const read = async () => {
      const response = await server.t.request({
        method: "GET",
        url: `/v1/pki/acme/renewal-info/${id}`,
        token: null,
      });
      assert.equal(response.statusCode, 200, response.body);
      assert.ok(Number(response.headers["retry-after"]) > 0);
      return response.json().suggestedWindow as { start: string; end: string };
    };
    const normal = await read();
    assert.ok(Date.parse(normal.start) > Date.now());
    assert.ok(Date.parse(normal.start) < Date.parse(normal.end));
    assert.ok(Date.parse(normal.end) < leaf!.notAfter.getTime());

    await ok(server.t, "POST", "/v1/pki/revoke", { serial_number: leaf!.serialNumber });
    const revoked = await read();
    assert.ok(Date.parse(revoked.start) <= Date.now());
  });

  it("suggests early renewal after issuer change", async () => {
    const chain = await issue(await newEab(), `rotate.${TEST_DOMAIN}`);
    const [leaf] = parseCertificates(chain, "certificate");
    const id = certificateId(leaf!)!;
    const url = `/v1/pki/acme/renewal-info/${id}`;
    const before = (await server.t.request({ method: "GET", url, token: null })).json()
      .suggestedWindow;
    assert.ok(Date.parse(before.start) > Date.now());

    const next = await ok(server.t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Keyward ACME Test Root 2",
      key_type: "ec",
      ttl: "87600h",
    });
    await ok(server.t, "POST", "/v1/pki/config/issuers", { default: next.issuer_id });
    const afterRotation = (await server.t.request({ method: "GET", url, token: null })).json()
      .suggestedWindow;
    assert.ok(Date.parse(afterRotation.start) <= Date.now());
  });

  it("rejects unknown certificate identifier", async () => {
    const response = await server.t.request({
      method: "GET",
      url: "/v1/pki/acme/renewal-info/AAAA.AQ",
      token: null,
    });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().type, "urn:ietf:params:acme:error:malformed");
  });
});
