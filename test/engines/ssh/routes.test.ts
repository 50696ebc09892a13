import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import {
  clientKey,
  createSshRouteFixture,
  decodeKrl,
  HOST_ROLE,
  ok,
  type SshRouteFixture,
  USER_ROLE,
} from "./fixtures.ts";

describe("SSH routes", () => {
  let fixture: SshRouteFixture;
  before(async () => {
    fixture = await createSshRouteFixture();
  });
  after(async () => fixture.close());

  it("marks only trust material public", () => {
    const publicRoutes = fixture.routes
      .filter((route) => route.config?.public === true && route.method === "GET")
      .map((route) => `${route.method} ${route.url}`)
      .sort();
    assert.deepEqual(publicRoutes, [
      "GET /v1/ssh/known_hosts",
      "GET /v1/ssh/krl",
      "GET /v1/ssh/public_key",
      "GET /v1/ssh/public_key/:ca_type",
    ]);
  });

  it("rejects unknown body fields everywhere", () => {
    for (const route of fixture.routes) {
      const body = (route.schema as { body?: { additionalProperties?: boolean } } | undefined)
        ?.body;
      if (body) assert.equal(body.additionalProperties, false, `${route.method} ${route.url}`);
    }
  });

  it("configures the CA like Vault", async () => {
    const created = await ok(fixture, "POST", "/v1/ssh/config/ca", {
      generate_signing_key: true,
      key_type: "ssh-ed25519",
    });
    assert.match(created.public_key, /^ssh-ed25519 /);
    assert.equal(created.rotation_phase, "none");
    assert.equal(created.keys[0].state, "active");
    const read = await ok(fixture, "GET", "/v1/ssh/config/ca");
    assert.equal(read.public_key, created.public_key);

    const again = await fixture.request({
      method: "POST",
      url: "/v1/ssh/config/ca",
      payload: { key_type: "ssh-ed25519" },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, "already_exists");

    const publicKey = await fixture.request({ method: "GET", url: "/v1/ssh/public_key" });
    assert.equal(publicKey.statusCode, 200);
    assert.match(publicKey.headers["content-type"] as string, /^text\/plain/);
    assert.ok(created.public_key.endsWith("\n"));
    assert.equal(publicKey.body, created.public_key);
  });

  it("configures a separate host CA", async () => {
    const shared = await ok(fixture, "GET", "/v1/ssh/config/ca/host");
    assert.equal(shared.shared_with_user_ca, true);
    const host = await ok(fixture, "POST", "/v1/ssh/config/ca/host", {
      key_type: "ecdsa-sha2-nistp384",
    });
    assert.match(host.public_key, /^ecdsa-sha2-nistp384 /);
    const hostKeys = await fixture.request({ method: "GET", url: "/v1/ssh/public_key/host" });
    assert.equal(hostKeys.body, host.public_key);
    const knownHosts = await fixture.request({
      method: "GET",
      url: "/v1/ssh/known_hosts?host_pattern=*.example.com",
    });
    assert.equal(knownHosts.body, `@cert-authority *.example.com ${host.public_key}`);
    const patternList = await fixture.request({
      method: "GET",
      url: "/v1/ssh/known_hosts?host_pattern=*.example.com,10.0.0.*,!bastion.example.com",
    });
    assert.equal(
      patternList.body,
      `@cert-authority *.example.com,10.0.0.*,!bastion.example.com ${host.public_key}`,
    );
    for (const pattern of ["a b", "a,,b", ","]) {
      const rejected = await fixture.request({
        method: "GET",
        url: `/v1/ssh/known_hosts?host_pattern=${encodeURIComponent(pattern)}`,
      });
      assert.equal(rejected.statusCode, 400, pattern);
      assert.equal(rejected.json().field, "host_pattern");
    }
    const bad = await fixture.request({ method: "GET", url: "/v1/ssh/config/ca/other" });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, "ca_type");
  });

  it("writes, reads and lists roles", async () => {
    const written = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/users",
      payload: USER_ROLE,
    });
    assert.equal(written.statusCode, 204, written.body);
    await fixture.request({ method: "PUT", url: "/v1/ssh/roles/hosts", payload: HOST_ROLE });
    const role = await ok(fixture, "GET", "/v1/ssh/roles/users");
    assert.equal(role.allowed_users, "alice,bob");
    assert.equal(role.ttl, 3600);
    assert.equal(role.max_ttl, 86_400);
    assert.deepEqual(role.default_extensions, { "permit-pty": "" });
    assert.equal(role.algorithm_signer, "default");
    assert.equal(role.effective_ttl, 3600);
    assert.equal(role.effective_max_ttl, 86_400);
    const hosts = await ok(fixture, "GET", "/v1/ssh/roles/hosts");
    assert.equal(hosts.key_id_format, "");
    assert.equal(
      hosts.effective_key_id_format,
      "keyward-{{token_display_name}}-{{public_key_hash}}",
    );
    const list = await ok(fixture, "GET", "/v1/ssh/roles?list=true");
    assert.deepEqual(list.keys, ["hosts", "users"]);
  });

  it("signs with the caller's identity", async () => {
    const key = clientKey();
    const signed = await ok(
      fixture,
      "POST",
      "/v1/ssh/sign/users",
      { public_key: key.line, valid_principals: "bob", extensions: { "permit-pty": "" } },
      { displayName: "token-bob" },
    );
    assert.match(signed.serial_number, /^[0-9a-f]{16}$/);
    const certificate = decodeCertificateLine(signed.signed_key, "signed_key");
    assert.deepEqual(certificate.principals, ["bob"]);
    assert.match(certificate.keyId, /^keyward-token-bob-[0-9a-f]{64}$/);
    const record = await ok(fixture, "GET", `/v1/ssh/certs/${signed.serial_number}`);
    assert.equal(record.key_id, certificate.keyId);
    assert.equal(record.revoked, false);
  });

  it("issues a key pair", async () => {
    const issued = await ok(fixture, "POST", "/v1/ssh/issue/hosts", {
      key_type: "ed25519",
      cert_type: "host",
      valid_principals: "web.example.com",
    });
    assert.match(issued.private_key, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.equal(issued.private_key_type, "ed25519");
    assert.equal(decodeCertificateLine(issued.signed_key, "k").type, "host");
  });

  it("revokes and serves the KRL", async () => {
    const signed = await ok(fixture, "POST", "/v1/ssh/sign/users", {
      public_key: clientKey().line,
    });
    const revoked = await ok(fixture, "POST", "/v1/ssh/revoke", {
      serial_number: signed.serial_number,
    });
    assert.equal(revoked.revoked_by, "serial_number");
    assert.deepEqual(revoked.certificates_revoked, [signed.serial_number]);
    const krl = await fixture.request({ method: "GET", url: "/v1/ssh/krl" });
    assert.equal(krl.statusCode, 200);
    assert.equal(krl.headers["content-type"], "application/octet-stream");
    const decoded = decodeKrl(krl.rawPayload);
    assert.equal(decoded.version, BigInt(revoked.krl_version));
  });

  it("runs a rotation over HTTP", async () => {
    const prepared = await ok(fixture, "POST", "/v1/ssh/config/ca/user/rotate/prepare", {
      key_type: "ssh-ed25519",
    });
    assert.equal(prepared.rotation_phase, "prepared");
    const bundle = await fixture.request({ method: "GET", url: "/v1/ssh/public_key" });
    assert.equal(bundle.body.trim().split("\n").length, 2);
    const switched = await ok(fixture, "POST", "/v1/ssh/config/ca/user/rotate/switch");
    assert.equal(switched.rotation_phase, "switched");
    const rolledBack = await ok(fixture, "POST", "/v1/ssh/config/ca/user/rotate/rollback", {});
    assert.equal(rolledBack.rotation_phase, "prepared");
    await ok(fixture, "POST", "/v1/ssh/config/ca/user/rotate/switch");
    const retired = await ok(fixture, "POST", "/v1/ssh/config/ca/user/rotate/retire");
    assert.equal(retired.rotation_phase, "none");
    assert.equal(retired.keys.length, 1);
  });

  it("manages legacy keys", async () => {
    const key = clientKey("rsa", 1024);
    const registered = await ok(fixture, "POST", "/v1/ssh/legacy_keys/old-laptop", {
      public_key: key.line,
    });
    assert.equal(registered.weak, true);
    assert.match(registered.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    const list = await ok(fixture, "GET", "/v1/ssh/legacy_keys?list=true");
    assert.deepEqual(list.keys, ["old-laptop"]);
    const file = await fixture.request({ method: "GET", url: "/v1/ssh/authorized_keys" });
    assert.equal(file.body, `${key.line}\n`);
    const deleted = await fixture.request({
      method: "DELETE",
      url: "/v1/ssh/legacy_keys/old-laptop",
    });
    assert.equal(deleted.statusCode, 204);
  });

  it("reads defaults of a bare role", async () => {
    const written = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/bare",
      payload: { key_type: "ca", allow_user_certificates: true },
    });
    assert.equal(written.statusCode, 204, written.body);
    const role = await ok(fixture, "GET", "/v1/ssh/roles/bare");
    // Vault returns the fields as written; the effective_ fields give what applies.
    assert.equal(role.ttl, 0);
    assert.equal(role.max_ttl, 0);
    assert.equal(role.key_id_format, "");
    assert.equal(role.effective_ttl, 3600);
    assert.equal(role.effective_max_ttl, 768 * 3600);
    assert.equal(
      role.effective_key_id_format,
      "keyward-{{token_display_name}}-{{public_key_hash}}",
    );
  });

  it("deletes a role", async () => {
    await fixture.request({ method: "POST", url: "/v1/ssh/roles/gone", payload: USER_ROLE });
    const deleted = await fixture.request({ method: "DELETE", url: "/v1/ssh/roles/gone" });
    assert.equal(deleted.statusCode, 204);
    const read = await fixture.request({ method: "GET", url: "/v1/ssh/roles/gone" });
    assert.equal(read.statusCode, 404);
  });
});
