import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { formatPublicKeyLine } from "../../../src/engines/ssh/public-keys.ts";
import { SshWriter } from "../../../src/engines/ssh/wire.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  clientKey,
  createSshRouteFixture,
  ok,
  run,
  type SshRouteFixture,
  tempFiles,
  USER_ROLE,
} from "./fixtures.ts";

/** Builds an `ssh-ed25519` line whose 32-byte point encoding is `point`. */
function ed25519Line(point: Buffer): string {
  const blob = new SshWriter().string("ssh-ed25519").string(point).toBuffer();
  return formatPublicKeyLine("ssh-ed25519", blob);
}

/** Builds an `ssh-rsa` line with the given exponent and modulus. */
function rsaLine(exponent: bigint, modulus: bigint): string {
  const bytes = (value: bigint) => {
    const hex = value.toString(16);
    return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
  };
  const blob = new SshWriter()
    .string("ssh-rsa")
    .mpint(bytes(exponent))
    .mpint(bytes(modulus))
    .toBuffer();
  return formatPublicKeyLine("ssh-rsa", blob);
}

const identityPoint = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);
/** y = 0 encodes a point of order 4. */
const orderFourPoint = Buffer.alloc(32);
/** y = p - 1 (the point (0, -1)), of order 2. */
const orderTwoPoint = Buffer.concat([
  Buffer.from([0xec]),
  Buffer.alloc(30, 0xff),
  Buffer.from([0x7f]),
]);
/** y = p, a non-canonical encoding of y = 0. */
const nonCanonicalPoint = Buffer.concat([
  Buffer.from([0xed]),
  Buffer.alloc(30, 0xff),
  Buffer.from([0x7f]),
]);
/** y = 2 has no x on the curve. */
const offCurvePoint = Buffer.concat([Buffer.from([2]), Buffer.alloc(31)]);

const ODD_3072_BIT_MODULUS = (1n << 3071n) | 0x1234567n | 1n;

describe("SSH signing rejects hostile keys and options", () => {
  let fixture: SshRouteFixture;
  const ed25519 = clientKey("ed25519").line;

  before(async () => {
    fixture = await createSshRouteFixture();
    await ok(fixture, "POST", "/v1/ssh/config/ca", { key_type: "ssh-ed25519" });
    const response = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/users",
      payload: USER_ROLE,
    });
    assert.equal(response.statusCode, 204, response.body);
  });
  after(async () => fixture.close());

  async function storedSerials(): Promise<string[]> {
    const response = await fixture.request({ method: "GET", url: "/v1/ssh/certs?list=true" });
    if (response.statusCode === 404) return [];
    assert.equal(response.statusCode, 200, response.body);
    return response.json().data.keys;
  }

  async function expectRejected(
    body: Record<string, unknown>,
    code: string,
    field: string,
  ): Promise<string> {
    const before = await storedSerials();
    const response = await fixture.request({
      method: "POST",
      url: "/v1/ssh/sign/users",
      payload: { public_key: ed25519, ...body },
    });
    assert.equal(response.statusCode, 400, response.body);
    const error = response.json();
    assert.equal(error.code, code, response.body);
    assert.equal(error.field, field, response.body);
    assert.deepEqual(await storedSerials(), before, "a rejected request stores no certificate");
    return error.errors[0];
  }

  const smallOrderKeys = [
    ["identity", identityPoint],
    ["order four", orderFourPoint],
    ["order two", orderTwoPoint],
  ] as const;
  for (const [name, point] of smallOrderKeys) {
    it(`rejects ed25519 ${name} point`, async () => {
      const message = await expectRejected(
        { public_key: ed25519Line(point) },
        "invalid_field",
        "public_key",
      );
      assert.match(message, /low-order/);
    });
  }

  it("rejects ed25519 non-canonical and off-curve points", async () => {
    for (const point of [nonCanonicalPoint, offCurvePoint]) {
      const message = await expectRejected(
        { public_key: ed25519Line(point) },
        "invalid_field",
        "public_key",
      );
      assert.match(message, /not a point/);
    }
  });

  it("signs ordinary ed25519, ecdsa and rsa keys", async () => {
    for (const key of [clientKey("ed25519"), clientKey("ec", "P-384"), clientKey("rsa", 2048)]) {
      const data = await ok(fixture, "POST", "/v1/ssh/sign/users", { public_key: key.line });
      assert.match(data.signed_key, /-cert-v01@openssh\.com /);
    }
  });

  it("rejects rsa modulus above 16384 bits", async () => {
    const line = rsaLine(65537n, (1n << 16400n) | 1n);
    const message = await expectRejected(
      { public_key: line },
      "unsupported_key_type",
      "public_key",
    );
    assert.match(message, /16384/);
  });

  it("rejects rsa even modulus", async () => {
    const line = rsaLine(65537n, 1n << 3071n);
    await expectRejected({ public_key: line }, "invalid_field", "public_key");
  });

  it("rejects rsa exponent above 64 bits", async () => {
    const line = rsaLine((1n << 100n) | 1n, ODD_3072_BIT_MODULUS);
    await expectRejected({ public_key: line }, "unsupported_key_type", "public_key");
  });

  it("rejects source-address sshd cannot read", async () => {
    const field = "critical_options.source-address";
    for (const value of [
      "10.0.0.0/8, 192.0.2.1",
      "10.0.0.1/8",
      "2001:db8::1/64",
      "fe80::1%eth0",
      "192.0.2.1,",
    ]) {
      await expectRejected(
        { critical_options: { "source-address": value } },
        "invalid_field",
        field,
      );
    }
  });

  it("rejects NUL in force-command", async () => {
    await expectRejected(
      { critical_options: { "force-command": "echo a\u0000rm" } },
      "invalid_field",
      "critical_options.force-command",
    );
  });

  it("rejects role default source-address with host bits", async () => {
    const response = await fixture.request({
      method: "POST",
      url: "/v1/ssh/roles/narrow",
      payload: { ...USER_ROLE, default_critical_options: { "source-address": "192.0.2.1/24" } },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "default_critical_options.source-address");
    const read = await fixture.request({ method: "GET", url: "/v1/ssh/roles/narrow" });
    assert.equal(read.statusCode, 404, "a rejected role write stores no role");
  });

  it("signs source-address list sshd reads", async (t) => {
    const value = "10.0.0.0/8,192.0.2.7,2001:db8::/32,::ffff:192.0.2.8";
    const data = await ok(fixture, "POST", "/v1/ssh/sign/users", {
      public_key: ed25519,
      critical_options: { "source-address": value },
    });
    if (!requirePeer(t, "ssh-keygen")) return;
    const folder = tempFiles();
    try {
      const path = folder.write("id-cert.pub", `${data.signed_key}\n`);
      const listed = run("ssh-keygen", ["-L", "-f", path]);
      assert.equal(listed.status, 0, listed.output);
      assert.ok(listed.output.includes(`source-address ${value}`), listed.output);
    } finally {
      folder.cleanup();
    }
  });
});

describe("SSH revoke rejects a numeric serial", () => {
  let fixture: SshRouteFixture;
  before(async () => {
    fixture = await createSshRouteFixture();
    await ok(fixture, "POST", "/v1/ssh/config/ca", { key_type: "ssh-ed25519" });
  });
  after(async () => fixture.close());

  it("rejects serial_number as JSON number", async () => {
    const response = await fixture.request({
      method: "POST",
      url: "/v1/ssh/revoke",
      payload: { serial_number: 12 },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "serial_number");
    const krl = await fixture.request({ method: "GET", url: "/v1/ssh/krl" });
    const revoked = await ok(fixture, "POST", "/v1/ssh/revoke", { serial_number: "12" });
    assert.equal(revoked.krl_version, 1, "the rejected request did not change the KRL");
    assert.equal(krl.statusCode, 200);
  });
});
