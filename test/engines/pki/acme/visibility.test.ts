import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { parseCertificates } from "../../../../src/engines/pki/pem.ts";
import { cli, type ServerProcess, startDevServer } from "../../../helpers/server-process.ts";
import { freePort, startHttpResponder, TEST_DOMAIN } from "./fixtures.ts";

const FAST_BACKOFF = { backoffMin: 50, backoffMax: 500, backoffAttempts: 30 };

/** Returns the base64 body of a PEM block, the part that would leak if the key were logged. */
function pemBody(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
}

/**
 * An ACME issuance against a real `keyward server --dev` process, then its
 * orders, authorizations and certificate read back through the `keyward`
 * CLI and the audit log.
 */
describe("ACME records through CLI and audit", () => {
  let server: ServerProcess;
  let http: Awaited<ReturnType<typeof startHttpResponder>>;
  let env: NodeJS.ProcessEnv;
  const issued = {} as {
    accountId: string;
    orderId: string;
    serialHex: string;
    eabKey: string;
    accountKeyPem: string;
    certificateKeyPem: string;
  };

  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
  const api = async (method: string, path: string, body?: object): Promise<any> => {
    const response = await fetch(`${server.address}/v1/${path}`, {
      method,
      headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${text}`);
    return text === "" ? undefined : JSON.parse(text);
  };

  const json = async (args: string[]) => {
    const result = await cli([...args, "--format", "json"], env);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout);
  };

  before(async () => {
    server = await startDevServer();
    env = { KEYWARD_ADDR: server.address, KEYWARD_TOKEN: server.rootToken };
    const httpPort = await freePort();
    http = await startHttpResponder(httpPort);

    await api("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
    await api("POST", "pki/root/generate/internal", {
      common_name: "Visibility Root",
      key_type: "ec",
      ttl: "87600h",
    });
    await api("POST", "pki/roles/web", {
      allowed_domains: TEST_DOMAIN,
      allow_subdomains: true,
      key_type: "any",
      max_ttl: "2160h",
    });
    await api("POST", "pki/config/acme", {
      enabled: true,
      default_directory_policy: "role:web",
      directory_eab_policies: { acme: "new-account-required" },
      allowed_networks: ["127.0.0.0/8"],
      hosts: { [`*.${TEST_DOMAIN}`]: "127.0.0.1" },
      http_port: httpPort,
      validation_timeout_seconds: 5,
    });
    const eab = (await api("POST", "pki/acme/new-eab")).data;
    issued.eabKey = eab.key;

    const accountKey = await acme.crypto.createPrivateEcdsaKey();
    issued.accountKeyPem = accountKey.toString();
    const client = new acme.Client({
      directoryUrl: `${server.address}/v1/pki/acme/directory`,
      accountKey,
      externalAccountBinding: { kid: eab.id, hmacKey: eab.key },
      ...FAST_BACKOFF,
    });
    const [certificateKey, csr] = await acme.crypto.createCsr({ commonName: `vis.${TEST_DOMAIN}` });
    issued.certificateKeyPem = certificateKey.toString();
    const chain = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        http.tokens.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async () => undefined,
    });
    const [leaf] = parseCertificates(chain, "certificate");
    issued.serialHex = leaf!.serialNumber.toLowerCase();
    issued.accountId = client.getAccountUrl().split("/").pop()!;
  });

  after(async () => {
    await http?.close();
    await server?.stop();
  });

  it("lists accounts with the CLI", async () => {
    const result = await cli(["list", "pki/acme/mgmt/accounts"], env);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(issued.accountId));
  });

  it("lists account orders with the CLI", async () => {
    const listed = await json(["list", `pki/acme/mgmt/accounts/${issued.accountId}/orders`]);
    assert.equal(listed.data.keys.length, 1);
    issued.orderId = listed.data.keys[0];
    const summary = listed.data.key_info[issued.orderId];
    assert.equal(summary.status, "valid");
    assert.deepEqual(summary.identifiers, [{ type: "dns", value: `vis.${TEST_DOMAIN}` }]);
  });

  it("reads order with authorizations and serial", async () => {
    const order = (await json(["read", `pki/acme/mgmt/orders/${issued.orderId}`])).data;
    assert.equal(order.account_id, issued.accountId);
    assert.equal(order.serial_number.replaceAll(":", ""), issued.serialHex);
    assert.equal(order.certificate.serial_number, order.serial_number);
    assert.equal(order.authorizations.length, 1);
    const [authorization] = order.authorizations;
    assert.equal(authorization.status, "valid");
    const challenge = authorization.challenges.find(
      (item: { type: string }) => item.type === "http-01",
    );
    assert.equal(challenge.status, "valid");
  });

  it("reads authorization as a table", async () => {
    const listed = await json([
      "list",
      `pki/acme/mgmt/accounts/${issued.accountId}/authorizations`,
    ]);
    assert.equal(listed.data.keys.length, 1);
    const result = await cli(["read", `pki/acme/mgmt/authorizations/${listed.data.keys[0]}`], env);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /status\s+valid/);
    assert.match(result.stdout, new RegExp(`vis\\.${TEST_DOMAIN.replace(".", "\\.")}`));
  });

  it("fails CLI read of unknown order", async () => {
    const result = await cli(["read", "pki/acme/mgmt/orders/nosuchorder"], env);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /not found/);
  });

  it("audits new-order, finalize and certificate", async () => {
    for (const path of [
      "pki/acme/new-order",
      `pki/acme/order/${issued.orderId}/finalize`,
      `pki/acme/certificate/${issued.serialHex}`,
    ]) {
      const search = await api("GET", `sys/audit/search?path_prefix=${path}&type=response`);
      assert.ok(search.data.total >= 1, `no audit record for ${path}`);
      const [record] = search.data.records;
      assert.equal(record.request.path, path);
      assert.ok(record.response.status < 300, JSON.stringify(record.response));
    }
  });

  it("keeps secrets out of audit", async () => {
    const search = await api("GET", "sys/audit/search?path_prefix=pki/&limit=1000");
    const records = JSON.stringify(search.data.records);
    const eabKeyBytes = Buffer.from(issued.eabKey, "base64url");
    for (const secret of [
      issued.eabKey,
      eabKeyBytes.toString("base64"),
      eabKeyBytes.toString("hex"),
      pemBody(issued.accountKeyPem).slice(0, 64),
      pemBody(issued.certificateKeyPem).slice(0, 64),
    ]) {
      assert.ok(!records.includes(secret), "a secret reached the audit log");
    }
    assert.ok(!records.includes("PRIVATE KEY"));

    const eabSearch = await api(
      "GET",
      "sys/audit/search?path_prefix=pki/acme/new-eab&type=response",
    );
    const [record] = eabSearch.data.records;
    assert.match(record.response.data.data.key, /^hmac-sha256:/);
  });
});
