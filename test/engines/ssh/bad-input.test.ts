import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  clientKey,
  createSshRouteFixture,
  DSA_PUBLIC_KEY,
  HOST_ROLE,
  ok,
  type SshRouteFixture,
  USER_ROLE,
} from "./fixtures.ts";

interface Case {
  name: string;
  url: string;
  body: Record<string, unknown>;
  status: number;
  code?: string;
  field?: string;
}

const ed25519 = clientKey("ed25519").line;
const rsa1024 = clientKey("rsa", 1024).line;
const rsa2048 = clientKey("rsa", 2048).line;
const [edType, edBase64] = ed25519.split(" ") as [string, string];
const truncated = `${edType} ${Buffer.from(edBase64, "base64").subarray(0, 20).toString("base64")}`;
const trailing = `${edType} ${Buffer.concat([Buffer.from(edBase64, "base64"), Buffer.from([0])]).toString("base64")}`;
const skKey = `sk-ssh-ed25519@openssh.com ${Buffer.concat([Buffer.from([0, 0, 0, 26]), Buffer.from("sk-ssh-ed25519@openssh.com")]).toString("base64")}`;

const dsaPem = generateKeyPairSync("dsa", { modulusLength: 2048, divisorLength: 256 })
  .privateKey.export({ format: "pem", type: "pkcs8" })
  .toString();
const manyPrincipals = Array.from({ length: 257 }, (_, index) => `u${index}`).join(",");

const sign = (body: Record<string, unknown>, role = "users") => ({
  url: `/v1/ssh/sign/${role}`,
  body: { public_key: ed25519, ...body },
});

const CASES: Case[] = [
  { name: "ok ed25519 user certificate", ...sign({}), status: 200 },
  {
    name: "ok host certificate",
    ...sign({ cert_type: "host", valid_principals: "a.example.com" }, "hosts"),
    status: 200,
  },
  {
    name: "ok rsa 3072 under strict role",
    ...sign({ public_key: clientKey("rsa", 3072).line }, "strict"),
    status: 200,
  },
  {
    name: "fail key not base64",
    ...sign({ public_key: "ssh-ed25519 !!!!" }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail key with no blob",
    ...sign({ public_key: "ssh-ed25519" }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail empty key",
    ...sign({ public_key: "" }),
    status: 400,
    code: "missing_field",
    field: "public_key",
  },
  {
    name: "fail truncated key blob",
    ...sign({ public_key: truncated }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail trailing bytes in blob",
    ...sign({ public_key: trailing }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail type differs from blob",
    ...sign({ public_key: ed25519.replace("ssh-ed25519", "ecdsa-sha2-nistp256") }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail two keys in one field",
    ...sign({ public_key: `${ed25519}\n${ed25519}` }),
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail ssh-dss key",
    ...sign({ public_key: DSA_PUBLIC_KEY }),
    status: 400,
    code: "unsupported_key_type",
    field: "public_key",
  },
  {
    name: "fail security key type",
    ...sign({ public_key: skKey }),
    status: 400,
    code: "unsupported_key_type",
    field: "public_key",
  },
  {
    name: "fail rsa 1024 key",
    ...sign({ public_key: rsa1024 }),
    status: 400,
    code: "unsupported_key_type",
    field: "public_key",
  },
  {
    name: "fail rsa below role minimum",
    ...sign({ public_key: rsa2048 }, "strict"),
    status: 400,
    code: "unsupported_key_type",
    field: "public_key",
  },
  {
    name: "fail key type outside role",
    ...sign({}, "strict"),
    status: 400,
    code: "unsupported_key_type",
    field: "public_key",
  },
  {
    name: "fail principal outside role",
    ...sign({ valid_principals: "root" }),
    status: 400,
    code: "name_not_allowed",
    field: "valid_principals",
  },
  {
    name: "fail principal with space",
    ...sign({ valid_principals: "alice smith" }),
    status: 400,
    code: "invalid_field",
    field: "valid_principals",
  },
  {
    name: "fail 257 principals",
    ...sign({ valid_principals: manyPrincipals }, "any"),
    status: 400,
    code: "invalid_field",
    field: "valid_principals",
  },
  {
    name: "fail host outside domains",
    ...sign({ cert_type: "host", valid_principals: "evil.org" }, "hosts"),
    status: 400,
    code: "name_not_allowed",
    field: "valid_principals",
  },
  {
    name: "fail bare domain not allowed",
    ...sign({ cert_type: "host", valid_principals: "example.com" }, "hosts"),
    status: 400,
    code: "name_not_allowed",
    field: "valid_principals",
  },
  {
    name: "fail critical option outside role",
    ...sign({ critical_options: { "verify-required": "" } }),
    status: 400,
    code: "name_not_allowed",
    field: "critical_options.verify-required",
  },
  {
    name: "fail extension outside role",
    ...sign({ extensions: { "permit-X11-forwarding": "" } }),
    status: 400,
    code: "name_not_allowed",
    field: "extensions.permit-X11-forwarding",
  },
  {
    name: "fail flag extension with value",
    ...sign({ extensions: { "permit-pty": "yes" } }),
    status: 400,
    code: "invalid_field",
    field: "extensions.permit-pty",
  },
  {
    name: "fail empty force-command",
    ...sign({ critical_options: { "force-command": "" } }),
    status: 400,
    code: "invalid_field",
    field: "critical_options.force-command",
  },
  {
    name: "fail bad source-address",
    ...sign({ critical_options: { "source-address": "10.0.0.0/33" } }),
    status: 400,
    code: "invalid_field",
    field: "critical_options.source-address",
  },
  {
    name: "fail options on host certificate",
    ...sign(
      { cert_type: "host", valid_principals: "a.example.com", extensions: { "permit-pty": "" } },
      "hosts",
    ),
    status: 400,
    code: "name_not_allowed",
    field: "extensions",
  },
  {
    name: "fail ttl above max_ttl",
    ...sign({ ttl: "48h" }),
    status: 400,
    code: "ttl_too_long",
    field: "ttl",
  },
  {
    name: "fail ttl not a duration",
    ...sign({ ttl: "soon" }),
    status: 400,
    code: "invalid_field",
    field: "ttl",
  },
  {
    name: "fail unknown cert_type",
    ...sign({ cert_type: "admin" }),
    status: 400,
    code: "invalid_field",
    field: "cert_type",
  },
  {
    name: "fail host certificate on user role",
    ...sign({ cert_type: "host", valid_principals: "alice" }),
    status: 400,
    code: "name_not_allowed",
    field: "cert_type",
  },
  {
    name: "fail key_id not allowed",
    ...sign({ key_id: "me" }),
    status: 400,
    code: "name_not_allowed",
    field: "key_id",
  },
  {
    name: "fail unknown field",
    ...sign({ valid_after: 0 }),
    status: 400,
    code: "unknown_field",
    field: "valid_after",
  },
  { name: "fail missing role", ...sign({}, "nobody"), status: 404, code: "not_found" },
  {
    name: "fail invalid role name",
    ...sign({}, "..bad"),
    status: 400,
    code: "invalid_field",
    field: "role",
  },
  {
    name: "fail issue dsa",
    url: "/v1/ssh/issue/users",
    body: { key_type: "dsa" },
    status: 400,
    code: "unsupported_key_type",
    field: "key_type",
  },
  {
    name: "fail issue rsa 1024",
    url: "/v1/ssh/issue/users",
    body: { key_type: "rsa", key_bits: 1024 },
    status: 400,
    code: "invalid_field",
    field: "key_bits",
  },
  {
    name: "fail revoke serial with letters",
    url: "/v1/ssh/revoke",
    body: { serial_number: "12g4" },
    status: 400,
    code: "invalid_field",
    field: "serial_number",
  },
  {
    name: "fail revoke serial too long",
    url: "/v1/ssh/revoke",
    body: { serial_number: "1".repeat(17) },
    status: 400,
    code: "invalid_field",
    field: "serial_number",
  },
  {
    name: "fail revoke negative serial",
    url: "/v1/ssh/revoke",
    body: { serial_number: "-5" },
    status: 400,
    code: "invalid_field",
    field: "serial_number",
  },
  {
    name: "fail revoke serial with colons",
    url: "/v1/ssh/revoke",
    body: { serial_number: "0a:0b" },
    status: 400,
    code: "invalid_field",
    field: "serial_number",
  },
  {
    name: "fail revoke serial zero",
    url: "/v1/ssh/revoke",
    body: { serial_number: "0" },
    status: 400,
    code: "invalid_field",
    field: "serial_number",
  },
  {
    name: "fail revoke key_id with NUL",
    url: "/v1/ssh/revoke",
    body: { key_id: "\u0000abc" },
    status: 400,
    code: "invalid_field",
    field: "key_id",
  },
  {
    name: "fail revoke nothing",
    url: "/v1/ssh/revoke",
    body: {},
    status: 400,
    code: "invalid_request",
    field: "serial_number",
  },
  {
    name: "fail revoke malformed key",
    url: "/v1/ssh/revoke",
    body: { public_key: truncated },
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail role with otp key type",
    url: "/v1/ssh/roles/otp",
    body: { key_type: "otp" },
    status: 400,
    code: "unsupported_operation",
    field: "key_type",
  },
  {
    name: "fail role with ssh-rsa signer",
    url: "/v1/ssh/roles/sha1",
    body: { ...USER_ROLE, algorithm_signer: "ssh-rsa" },
    status: 400,
    code: "invalid_field",
    field: "algorithm_signer",
  },
  {
    name: "fail role ttl above max_ttl",
    url: "/v1/ssh/roles/long",
    body: { ...USER_ROLE, ttl: "48h" },
    status: 400,
    code: "invalid_field",
    field: "ttl",
  },
  {
    name: "fail role default_user with NUL",
    url: "/v1/ssh/roles/nul",
    body: { ...USER_ROLE, default_user: "a\u0000b" },
    status: 400,
    code: "invalid_field",
    field: "default_user",
  },
  {
    name: "fail role default_user with comma",
    url: "/v1/ssh/roles/comma",
    body: { ...USER_ROLE, default_user: "root,admin" },
    status: 400,
    code: "invalid_field",
    field: "default_user",
  },
  {
    name: "fail role without certificate type",
    url: "/v1/ssh/roles/none",
    body: { key_type: "ca" },
    status: 400,
    code: "invalid_field",
    field: "allow_user_certificates",
  },
  {
    name: "fail role key length for dsa",
    url: "/v1/ssh/roles/dsa",
    body: { ...USER_ROLE, allowed_user_key_lengths: { dsa: 1024 } },
    status: 400,
    code: "unsupported_key_type",
    field: "allowed_user_key_lengths.dsa",
  },
  {
    name: "fail CA with ssh-dss",
    url: "/v1/ssh/config/ca/host",
    body: { key_type: "ssh-dss" },
    status: 400,
    code: "unsupported_key_type",
    field: "key_type",
  },
  {
    name: "fail CA with rsa 1024 bits",
    url: "/v1/ssh/config/ca/host",
    body: { key_type: "ssh-rsa", key_bits: 1024 },
    status: 400,
    code: "invalid_field",
    field: "key_bits",
  },
  {
    name: "fail CA with garbage private key",
    url: "/v1/ssh/config/ca/host",
    body: { private_key: "not a key" },
    status: 400,
    code: "invalid_field",
    field: "private_key",
  },
  {
    name: "fail CA with DSA PEM key",
    url: "/v1/ssh/config/ca/host",
    body: { private_key: dsaPem },
    status: 400,
    code: "unsupported_key_type",
    field: "private_key",
  },
  {
    name: "fail rotating shared host CA",
    url: "/v1/ssh/config/ca/host/rotate/prepare",
    body: { key_type: "ssh-ed25519" },
    status: 409,
    code: "invalid_state",
  },
  {
    name: "fail CA with public key only",
    url: "/v1/ssh/config/ca/host",
    body: { public_key: ed25519 },
    status: 400,
    code: "missing_field",
    field: "private_key",
  },
  {
    name: "fail legacy key not a key",
    url: "/v1/ssh/legacy_keys/x",
    body: { public_key: "hello" },
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail legacy key invalid name",
    url: "/v1/ssh/legacy_keys/..bad",
    body: { public_key: ed25519 },
    status: 400,
    code: "invalid_field",
    field: "name",
  },
];

describe("SSH bad input", () => {
  let fixture: SshRouteFixture;
  before(async () => {
    fixture = await createSshRouteFixture();
    await ok(fixture, "POST", "/v1/ssh/config/ca", { key_type: "ssh-ed25519" });
    for (const [name, body] of [
      ["users", USER_ROLE],
      ["hosts", HOST_ROLE],
      ["strict", { ...USER_ROLE, allowed_user_key_lengths: { rsa: 3072 } }],
      ["any", { ...USER_ROLE, allowed_users: "*" }],
    ] as const) {
      const response = await fixture.request({
        method: "POST",
        url: `/v1/ssh/roles/${name}`,
        payload: body,
      });
      assert.equal(response.statusCode, 204, response.body);
    }
  });
  after(async () => fixture.close());

  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const response = await fixture.request({
        method: "POST",
        url: testCase.url,
        payload: testCase.body,
      });
      assert.equal(response.statusCode, testCase.status, response.body);
      if (testCase.status === 200) return;
      const body = response.json();
      assert.equal(body.code, testCase.code);
      assert.equal(body.field, testCase.field);
      assert.ok(Array.isArray(body.errors));
      assert.equal(body.errors.length, 1);
    });
  }
});
