import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import {
  clientKey,
  createSshRouteFixture,
  ok,
  type SshRouteFixture,
  USER_ROLE,
} from "./fixtures.ts";

interface Case {
  name: string;
  url: string;
  body: Record<string, unknown>;
  /** The field an `invalid_field` response names; absent for a case that must succeed. */
  field?: string;
}

const key = clientKey().line;
const sign = (body: Record<string, unknown>) => ({
  url: "/v1/ssh/sign/users",
  body: { public_key: key, ...body },
});
const role = (body: Record<string, unknown>) => ({
  url: "/v1/ssh/roles/typed",
  body: { ...USER_ROLE, ...body },
});
const revoke = (body: Record<string, unknown>) => ({ url: "/v1/ssh/revoke", body });

const CASES: Case[] = [
  { name: "ok ttl as seconds", ...sign({ ttl: 600 }) },
  { name: "ok ttl as numeric string", ...sign({ ttl: "600" }) },
  { name: "ok ttl as duration", ...sign({ ttl: "10m" }) },
  { name: "ok role flag as string", ...role({ allow_user_key_ids: "true" }) },
  { name: "ok role ttl as number", ...role({ ttl: 600 }) },
  { name: "ok number for top-level string", ...role({ default_user: 1000, allowed_users: 1000 }) },
  { name: "ok list field as array", ...role({ allowed_users: ["alice", "bob"] }) },
  { name: "fail ttl as boolean", ...sign({ ttl: true }), field: "ttl" },
  { name: "fail ttl as false", ...sign({ ttl: false }), field: "ttl" },
  { name: "fail ttl as list", ...sign({ ttl: [1] }), field: "ttl" },
  { name: "fail key_id as boolean", ...sign({ key_id: true }), field: "key_id" },
  {
    name: "fail principals as boolean",
    ...sign({ valid_principals: true }),
    field: "valid_principals",
  },
  {
    name: "fail force-command as number",
    ...sign({ critical_options: { "force-command": 123 } }),
    field: "critical_options.force-command",
  },
  {
    name: "fail extension as boolean",
    ...sign({ extensions: { "permit-pty": true } }),
    field: "extensions.permit-pty",
  },
  {
    name: "fail issue key_bits as boolean",
    url: "/v1/ssh/issue/users",
    body: { key_bits: false },
    field: "key_bits",
  },
  { name: "fail revoke key_id as boolean", ...revoke({ key_id: true }), field: "key_id" },
  {
    name: "fail revoke serial as list",
    ...revoke({ serial_number: ["a"] }),
    field: "serial_number",
  },
  {
    name: "fail revoke serial beyond safe integers",
    ...revoke({ serial_number: 2 ** 60 }),
    field: "serial_number",
  },
  { name: "fail default_user as list", ...role({ default_user: ["a"] }), field: "default_user" },
  {
    name: "fail key_id_format as boolean",
    ...role({ key_id_format: false }),
    field: "key_id_format",
  },
  { name: "fail no_store as number", ...role({ no_store: 0 }), field: "no_store" },
  { name: "fail role ttl as boolean", ...role({ ttl: true }), field: "ttl" },
  {
    name: "fail allowed_users as boolean",
    ...role({ allowed_users: true }),
    field: "allowed_users",
  },
  {
    name: "fail allowed_users item as number",
    ...role({ allowed_users: ["alice", 7] }),
    field: "allowed_users[1]",
  },
  {
    name: "fail key length as boolean",
    ...role({ allowed_user_key_lengths: { rsa: true } }),
    field: "allowed_user_key_lengths.rsa",
  },
  {
    name: "fail legacy comment as boolean",
    url: "/v1/ssh/legacy_keys/typed",
    body: { public_key: key, comment: false },
    field: "comment",
  },
  {
    name: "fail CA generate flag as number",
    url: "/v1/ssh/config/ca/host",
    body: { generate_signing_key: 1 },
    field: "generate_signing_key",
  },
];

describe("SSH JSON field types", () => {
  let fixture: SshRouteFixture;
  before(async () => {
    fixture = await createSshRouteFixture();
    await ok(fixture, "POST", "/v1/ssh/config/ca", { key_type: "ssh-ed25519" });
    const written = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/users",
      payload: USER_ROLE,
    });
    assert.equal(written.statusCode, 204, written.body);
  });
  after(async () => fixture.close());

  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const response = await fixture.request({
        method: "POST",
        url: testCase.url,
        payload: testCase.body,
      });
      if (testCase.field === undefined) {
        assert.ok(response.statusCode < 300, `${response.statusCode}: ${response.body}`);
        return;
      }
      assert.equal(response.statusCode, 400, response.body);
      const body = response.json();
      assert.equal(body.code, "invalid_field");
      assert.equal(body.field, testCase.field);
    });
  }

  it("keeps a one-item size list", async () => {
    const written = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/sizes",
      payload: { ...USER_ROLE, allowed_user_key_lengths: { rsa: 3072, ec: [384] } },
    });
    assert.equal(written.statusCode, 204, written.body);
    const read = await ok(fixture, "GET", "/v1/ssh/roles/sizes");
    assert.deepEqual(read.allowed_user_key_lengths, { rsa: 3072, ec: [384] });

    const p521 = await fixture.request({
      method: "POST",
      url: "/v1/ssh/sign/sizes",
      payload: { public_key: clientKey("ec", "P-521").line },
    });
    assert.equal(p521.statusCode, 400, p521.body);
    assert.equal(p521.json().code, "unsupported_key_type");
    await ok(fixture, "POST", "/v1/ssh/sign/sizes", { public_key: clientKey("ec", "P-384").line });
  });

  it("treats string ttl 0 as default", async () => {
    const signed = await ok(fixture, "POST", "/v1/ssh/sign/users", { public_key: key, ttl: "0" });
    const certificate = decodeCertificateLine(signed.signed_key, "signed_key");
    // USER_ROLE sets ttl 1h; valid_after is backdated by the 30 s default.
    assert.equal(certificate.validBefore - certificate.validAfter, 3600n + 30n);
  });
});
