import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { ok } from "../fixtures.ts";
import { type AcmeTestServer, startAcmeServer, TEST_DOMAIN } from "./fixtures.ts";
import { RawAcmeClient } from "./jws-client.ts";

/** The mount requires no binding; role `web`'s directory requires it and role `partners`' does not. */
describe("ACME binding policy per directory", () => {
  let server: AcmeTestServer;
  const partnersDirectoryUrl = () => `${server.base}/v1/pki/roles/partners/acme/directory`;

  before(async () => {
    server = await startAcmeServer();
    await ok(server.t, "POST", "/v1/pki/roles/partners", {
      allowed_domains: TEST_DOMAIN,
      allow_subdomains: true,
      key_type: "any",
    });
    await ok(server.t, "POST", "/v1/pki/config/acme", {
      allowed_roles: ["web", "partners"],
      eab_policy: "not-required",
      directory_eab_policies: { "roles/web/acme": "new-account-required" },
    });
  });

  after(async () => {
    await server?.close();
  });

  const client = async (directoryUrl: string, eab?: { kid: string; hmacKey: string }) =>
    new acme.Client({
      directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      ...(eab ? { externalAccountBinding: eab } : {}),
    });

  const directoryMeta = async (path: string) => {
    const response = await server.t.request({ method: "GET", url: path, token: null });
    assert.equal(response.statusCode, 200, response.body);
    return response.json().meta;
  };

  it("advertises each directory's policy", async () => {
    assert.equal((await directoryMeta("/v1/pki/acme/directory")).externalAccountRequired, false);
    const web = await directoryMeta("/v1/pki/roles/web/acme/directory");
    assert.equal(web.externalAccountRequired, true);
    const partners = await directoryMeta("/v1/pki/roles/partners/acme/directory");
    assert.equal(partners.externalAccountRequired, false);
  });

  it("reads policies from config", async () => {
    const config = await ok(server.t, "GET", "/v1/pki/config/acme");
    assert.equal(config.eab_policy, "not-required");
    assert.deepEqual(config.directory_eab_policies, { "roles/web/acme": "new-account-required" });
  });

  it("rejects unbound account where required", async () => {
    await assert.rejects(
      (await client(server.roleDirectoryUrl)).createAccount({ termsOfServiceAgreed: true }),
      /external account binding/,
    );
  });

  it("creates bound account where required", async () => {
    const created = await ok(server.t, "POST", "/v1/pki/roles/web/acme/new-eab");
    const eab = { kid: created.id as string, hmacKey: created.key as string };
    const account = await (await client(server.roleDirectoryUrl, eab)).createAccount({
      termsOfServiceAgreed: true,
    });
    assert.equal(account.status, "valid");
  });

  it("creates unbound account elsewhere", async () => {
    const partners = await (await client(partnersDirectoryUrl())).createAccount({
      termsOfServiceAgreed: true,
    });
    assert.equal(partners.status, "valid");
    const mount = await (await client(server.directoryUrl)).createAccount({
      termsOfServiceAgreed: true,
    });
    assert.equal(mount.status, "valid");
  });

  it("blocks unbound account under always-required", async () => {
    const raw = new RawAcmeClient(server.t);
    await raw.init("/v1/pki/roles/partners/acme/directory");
    await raw.register();
    const readAccount = () => raw.post(raw.kid, { payload: "" });
    assert.equal((await readAccount()).statusCode, 200);

    await ok(server.t, "POST", "/v1/pki/config/acme", {
      directory_eab_policies: {
        "roles/web/acme": "new-account-required",
        "roles/partners/acme": "always-required",
      },
    });
    try {
      const blocked = await readAccount();
      assert.equal(blocked.statusCode, 403, blocked.body);
      assert.equal(blocked.json().type, "urn:ietf:params:acme:error:externalAccountRequired");
      // The mount's default directory keeps the mount-wide policy.
      const mount = await directoryMeta("/v1/pki/acme/directory");
      assert.equal(mount.externalAccountRequired, false);
    } finally {
      await ok(server.t, "POST", "/v1/pki/config/acme", {
        directory_eab_policies: { "roles/web/acme": "new-account-required" },
      });
    }
  });

  for (const [name, policies] of [
    ["fail unknown directory key", { "roles/web": "always-required" }],
    ["fail role name with slash", { "roles/a/b/acme": "always-required" }],
    ["fail unknown policy", { acme: "sometimes" }],
  ] as const) {
    it(name, async () => {
      const response = await server.t.request({
        method: "POST",
        url: "/v1/pki/config/acme",
        payload: { directory_eab_policies: policies },
      });
      assert.equal(response.statusCode, 400, response.body);
      const config = await ok(server.t, "GET", "/v1/pki/config/acme");
      assert.deepEqual(config.directory_eab_policies, { "roles/web/acme": "new-account-required" });
    });
  }
});
