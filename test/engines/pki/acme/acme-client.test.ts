import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { requirePeer } from "../../../helpers/peers.ts";
import { run, runAsync } from "../fixtures.ts";
import {
  type AcmeTestServer,
  assertChainVerifies,
  startAcmeServer,
  startAlpnResponder,
  startHttpResponder,
  TEST_DOMAIN,
} from "./fixtures.ts";

/** acme-client polls with exponential backoff from 5 s by default; these tests poll quickly. */
const FAST_BACKOFF = { backoffMin: 50, backoffMax: 500, backoffAttempts: 30 };

describe("ACME with acme-client", () => {
  let server: AcmeTestServer;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;
  let alpn: Awaited<ReturnType<typeof startAlpnResponder>>;

  before(async () => {
    server = await startAcmeServer();
    http = await startHttpResponder(server.httpPort);
    alpn = await startAlpnResponder(server.tlsPort);
  });

  after(async () => {
    await http?.close();
    await alpn?.close();
    await server?.close();
  });

  const newClient = async (directoryUrl = server.directoryUrl) =>
    new acme.Client({
      directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      ...FAST_BACKOFF,
    });

  const http01 = {
    challengePriority: ["http-01"],
    skipChallengeVerification: true,
    challengeCreateFn: async (
      _authz: unknown,
      challenge: { token: string },
      keyAuthorization: string,
    ) => {
      http.tokens.set(challenge.token, keyAuthorization);
    },
    challengeRemoveFn: async (_authz: unknown, challenge: { token: string }) => {
      http.tokens.delete(challenge.token);
    },
  };

  it("issues multi-name certificate over http-01", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const client = await newClient();
    const names = [`www.${TEST_DOMAIN}`, `api.${TEST_DOMAIN}`];
    const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names });
    const chain = await client.auto({
      csr,
      email: "ops@example.com",
      termsOfServiceAgreed: true,
      ...http01,
    });
    assertChainVerifies(server, chain, run);
    const info = acme.crypto.readCertificateInfo(chain);
    assert.deepEqual([...info.domains.altNames].sort(), [...names].sort());
  });

  it("issues IP address certificate", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const client = await newClient(server.roleDirectoryUrl);
    await client.createAccount({ termsOfServiceAgreed: true });
    const order = await client.createOrder({ identifiers: [{ type: "ip", value: "127.0.0.1" }] });
    const [authorization] = await client.getAuthorizations(order);
    const challenge = authorization!.challenges.find((candidate) => candidate.type === "http-01")!;
    assert.equal(
      authorization!.challenges.some((candidate) => candidate.type === "dns-01"),
      false,
    );
    http.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
    const [, csr] = await acme.crypto.createCsr({ altNames: ["127.0.0.1"] });
    const finalized = await client.finalizeOrder(order, csr);
    assert.equal(finalized.status, "valid");
    assertChainVerifies(server, await client.getCertificate(finalized), run);
  });

  it("issues certificate over tls-alpn-01", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const client = await newClient();
    const name = `alpn.${TEST_DOMAIN}`;
    const [, csr] = await acme.crypto.createCsr({ commonName: name });
    const chain = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ["tls-alpn-01"],
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
        const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
        alpn.certificates.set(authz.identifier.value, {
          key: key.toString(),
          cert: cert.toString(),
        });
      },
      challengeRemoveFn: async (authz) => {
        alpn.certificates.delete(authz.identifier.value);
      },
    });
    assertChainVerifies(server, chain, run);
  });

  it("marks wrong http-01 response invalid", async () => {
    const client = await newClient();
    await client.createAccount({ termsOfServiceAgreed: true });
    const order = await client.createOrder({
      identifiers: [{ type: "dns", value: `wrong.${TEST_DOMAIN}` }],
    });
    const [authorization] = await client.getAuthorizations(order);
    const challenge = authorization!.challenges.find((candidate) => candidate.type === "http-01")!;
    http.tokens.set(challenge.token, "not-the-key-authorization");
    await client.completeChallenge(challenge);
    await assert.rejects(client.waitForValidStatus(challenge));
    const updated = await client.getOrder(order);
    assert.equal(updated.status, "invalid");
    assert.equal(
      (updated.error as { type?: string } | undefined)?.type,
      "urn:ietf:params:acme:error:incorrectResponse",
    );
  });

  it("reuses valid authorizations for new order", async () => {
    const client = await newClient();
    const name = `reuse.${TEST_DOMAIN}`;
    const [, csr] = await acme.crypto.createCsr({ commonName: name });
    await client.auto({ csr, termsOfServiceAgreed: true, ...http01 });
    const second = await client.createOrder({ identifiers: [{ type: "dns", value: name }] });
    assert.equal(second.status, "ready");
  });

  it("rolls over account key", async () => {
    const client = await newClient();
    await client.createAccount({ termsOfServiceAgreed: true });
    const accountUrl = client.getAccountUrl();
    await client.updateAccountKey(await acme.crypto.createPrivateEcdsaKey());
    const account = await client.updateAccount({ contact: ["mailto:new@example.com"] });
    assert.deepEqual(account.contact, ["mailto:new@example.com"]);
    assert.equal(client.getAccountUrl(), accountUrl);
  });

  it("revokes certificate and OCSP reports it", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const client = await newClient();
    const name = `revoke.${TEST_DOMAIN}`;
    const [, csr] = await acme.crypto.createCsr({ commonName: name });
    const chain = await client.auto({ csr, termsOfServiceAgreed: true, ...http01 });
    await client.revokeCertificate(chain, { reason: 4 });
    await assert.rejects(client.revokeCertificate(chain), /already revoked/);

    const leafPath = server.files.write(
      "revoked-leaf.pem",
      chain.split(/(?<=-----END CERTIFICATE-----)/)[0]!,
    );
    const rootPath = server.files.write("revoked-root.pem", server.rootPem);
    const ocsp = await runAsync("openssl", [
      "ocsp",
      "-issuer",
      rootPath,
      "-cert",
      leafPath,
      "-url",
      `${server.base}/v1/pki/ocsp`,
      "-CAfile",
      rootPath,
    ]);
    assert.equal(ocsp.status, 0, ocsp.output);
    assert.match(ocsp.output, /: revoked/);
  });

  it("deactivates account", async () => {
    const client = await newClient();
    await client.createAccount({ termsOfServiceAgreed: true });
    const account = await client.updateAccount({ status: "deactivated" });
    assert.equal(account.status, "deactivated");
    await assert.rejects(
      client.createOrder({ identifiers: [{ type: "dns", value: `gone.${TEST_DOMAIN}` }] }),
      /deactivated/,
    );
  });
});
