import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { decodeCertificateLine, VALID_FOREVER } from "../../../src/engines/ssh/certificate.ts";
import { parsePrivateKey } from "../../../src/engines/ssh/private-keys.ts";
import { parsePublicKeyLine, publicKeyBlob } from "../../../src/engines/ssh/public-keys.ts";
import { verifySsh } from "../../../src/engines/ssh/signatures.ts";
import {
  clientKey,
  createSshFixture,
  HOST_ROLE,
  keywardError,
  logText,
  roleWrite,
  USER_ROLE,
} from "./fixtures.ts";

const NOW_SECONDS = BigInt(Date.parse("2030-01-01T00:00:00Z") / 1000);

async function signingFixture(caKeyType = "ssh-ed25519") {
  const fixture = await createSshFixture();
  const ca = await fixture.service.configureCa("user", {
    keyType: caKeyType,
    keyBits: caKeyType === "ssh-rsa" ? 2048 : undefined,
  });
  await fixture.service.writeRole("users", roleWrite(USER_ROLE));
  await fixture.service.writeRole("hosts", roleWrite(HOST_ROLE));
  return { ...fixture, caPublicKey: ca.publicKey };
}

describe("SSH sign", () => {
  it("signs a user certificate with role defaults", async () => {
    const { service, caPublicKey } = await signingFixture();
    const key = clientKey("ec");
    const result = await service.sign(
      "users",
      { publicKey: key.line },
      { displayName: "token-ci", metadata: {} },
    );
    assert.match(result.serialNumber, /^[0-9a-f]{16}$/);
    assert.ok(result.signedKey.endsWith("\n"));
    const certificate = decodeCertificateLine(result.signedKey, "signed_key");
    assert.equal(certificate.type, "user");
    assert.deepEqual(certificate.principals, ["alice"]);
    assert.deepEqual(certificate.extensions, { "permit-pty": "" });
    assert.deepEqual(certificate.criticalOptions, {});
    assert.equal(certificate.validAfter, NOW_SECONDS - 30n);
    assert.equal(certificate.validBefore, NOW_SECONDS + 3600n);
    assert.equal(certificate.serial.toString(16).padStart(16, "0"), result.serialNumber);
    assert.deepEqual(certificate.key.blob, parsePublicKeyLine(key.line, "k").blob);
    const hash = createHash("sha256").update(certificate.key.blob).digest("hex");
    assert.equal(certificate.keyId, `keyward-token-ci-${hash}`);
    const ca = parsePublicKeyLine(caPublicKey, "ca");
    assert.ok(
      verifySsh(ca.keyObject!, "ssh-ed25519", certificate.signature, certificate.signedData),
    );
  });

  it("signs requested principals and options", async () => {
    const { service } = await signingFixture();
    const result = await service.sign("users", {
      publicKey: clientKey().line,
      validPrincipals: "bob,alice",
      ttl: "2h",
      criticalOptions: { "force-command": "uptime", "source-address": "10.0.0.0/8,::1" },
      extensions: { "permit-port-forwarding": "", "permit-pty": "" },
    });
    const certificate = decodeCertificateLine(result.signedKey, "signed_key");
    assert.deepEqual(certificate.principals, ["bob", "alice"]);
    assert.deepEqual(certificate.criticalOptions, {
      "force-command": "uptime",
      "source-address": "10.0.0.0/8,::1",
    });
    assert.deepEqual(certificate.extensions, { "permit-port-forwarding": "", "permit-pty": "" });
    assert.equal(certificate.validBefore, NOW_SECONDS + 7200n);
  });

  it("signs host certificates for host names", async () => {
    const { service } = await signingFixture();
    const result = await service.sign("hosts", {
      publicKey: clientKey().line,
      certType: "host",
      validPrincipals: "web.example.com,db.example.com",
    });
    const certificate = decodeCertificateLine(result.signedKey, "signed_key");
    assert.equal(certificate.type, "host");
    assert.deepEqual(certificate.principals, ["web.example.com", "db.example.com"]);
    assert.deepEqual(certificate.extensions, {});
    assert.equal(certificate.validBefore, NOW_SECONDS + 86_400n);
  });

  it("draws unique serials", async () => {
    const { service } = await signingFixture();
    const key = clientKey();
    const serials = new Set<string>();
    for (let i = 0; i < 50; i += 1) {
      serials.add((await service.sign("users", { publicKey: key.line })).serialNumber);
    }
    assert.equal(serials.size, 50);
  });

  it("signs with rsa-sha2-512 when the role asks", async () => {
    const { service } = await signingFixture("ssh-rsa");
    await service.writeRole(
      "rsa512",
      roleWrite({ ...USER_ROLE, algorithm_signer: "rsa-sha2-512" }),
    );
    for (const [role, algorithm] of [
      ["users", "rsa-sha2-256"],
      ["rsa512", "rsa-sha2-512"],
    ] as const) {
      const result = await service.sign(role, { publicKey: clientKey().line });
      const certificate = decodeCertificateLine(result.signedKey, "signed_key");
      assert.equal(certificate.signature.subarray(4, 4 + algorithm.length).toString(), algorithm);
    }
  });

  it("renders identity templates", async () => {
    const { service } = await signingFixture();
    await service.writeRole(
      "templated",
      roleWrite({
        key_type: "ca",
        allow_user_certificates: true,
        allowed_users: "{{identity.entity.name}},{{identity.entity.metadata.team}}-admin",
        allowed_users_template: true,
        default_user: "{{identity.entity.name}}",
        default_user_template: true,
        key_id_format: "{{role_name}}-{{token_display_name}}",
      }),
    );
    const identity = { displayName: "carol", metadata: { team: "ops" } };
    const byDefault = await service.sign("templated", { publicKey: clientKey().line }, identity);
    const certificate = decodeCertificateLine(byDefault.signedKey, "signed_key");
    assert.deepEqual(certificate.principals, ["carol"]);
    assert.equal(certificate.keyId, "templated-carol");
    const requested = await service.sign(
      "templated",
      { publicKey: clientKey().line, validPrincipals: "ops-admin" },
      identity,
    );
    assert.deepEqual(decodeCertificateLine(requested.signedKey, "k").principals, ["ops-admin"]);
    await assert.rejects(
      service.sign(
        "templated",
        { publicKey: clientKey().line, validPrincipals: "carol" },
        { displayName: "dave", metadata: {} },
      ),
      keywardError("name_not_allowed", "valid_principals"),
    );
  });

  it("allows empty principals only when the role does", async () => {
    const { service } = await signingFixture();
    const role = { key_type: "ca", allow_user_certificates: true, allowed_users: "*" };
    await service.writeRole("strict", roleWrite(role));
    await assert.rejects(
      service.sign("strict", { publicKey: clientKey().line }),
      keywardError("missing_field", "valid_principals"),
    );
    await service.writeRole("open", roleWrite({ ...role, allow_empty_principals: true }));
    const result = await service.sign("open", { publicKey: clientKey().line });
    assert.deepEqual(decodeCertificateLine(result.signedKey, "k").principals, []);
  });

  it("sets key_id only when allowed", async () => {
    const { service } = await signingFixture();
    await assert.rejects(
      service.sign("users", { publicKey: clientKey().line, keyId: "mine" }),
      keywardError("name_not_allowed", "key_id"),
    );
    await service.writeRole("ids", roleWrite({ ...USER_ROLE, allow_user_key_ids: true }));
    const result = await service.sign("ids", { publicKey: clientKey().line, keyId: "mine" });
    assert.equal(decodeCertificateLine(result.signedKey, "k").keyId, "mine");
  });

  it("enforces allowed user key lengths", async () => {
    const { service } = await signingFixture();
    await service.writeRole(
      "lengths",
      roleWrite({ ...USER_ROLE, allowed_user_key_lengths: { rsa: 3072, ec: [384] } }),
    );
    await assert.rejects(
      service.sign("lengths", { publicKey: clientKey("rsa", 2048).line }),
      keywardError("unsupported_key_type", "public_key"),
    );
    await assert.rejects(
      service.sign("lengths", { publicKey: clientKey("ec", "P-256").line }),
      keywardError("unsupported_key_type", "public_key"),
    );
    await assert.rejects(
      service.sign("lengths", { publicKey: clientKey("ed25519").line }),
      keywardError("unsupported_key_type", "public_key"),
    );
    await service.sign("lengths", { publicKey: clientKey("ec", "P-384").line });
    await service.sign("lengths", { publicKey: clientKey("rsa", 3072).line });
  });

  it("caps ttl at the role maximum", async () => {
    const { service } = await signingFixture();
    await assert.rejects(
      service.sign("users", { publicKey: clientKey().line, ttl: "25h" }),
      keywardError("ttl_too_long", "ttl"),
    );
    const result = await service.sign("users", { publicKey: clientKey().line, ttl: 86_400 });
    assert.equal(decodeCertificateLine(result.signedKey, "k").validBefore, NOW_SECONDS + 86_400n);
  });

  it("never writes forever", async () => {
    const { service } = await signingFixture();
    const result = await service.sign("users", { publicKey: clientKey().line });
    assert.notEqual(decodeCertificateLine(result.signedKey, "k").validBefore, VALID_FOREVER);
  });

  it("rejects a missing role", async () => {
    const { service } = await signingFixture();
    await assert.rejects(
      service.sign("nobody", { publicKey: clientKey().line }),
      keywardError("not_found"),
    );
  });

  it("rejects a revoked public key", async () => {
    const { service } = await signingFixture();
    const key = clientKey();
    await service.revoke({ publicKey: key.line });
    await assert.rejects(
      service.sign("users", { publicKey: key.line }),
      keywardError("invalid_state", "public_key"),
    );
  });
});

describe("SSH certificate inventory", () => {
  it("stores issued certificates", async () => {
    const { service } = await signingFixture();
    const key = clientKey();
    const result = await service.sign("users", { publicKey: key.line, validPrincipals: "bob" });
    const record = await service.readCertificate(result.serialNumber);
    assert.equal(record.serialNumber, result.serialNumber);
    assert.deepEqual(record.principals, ["bob"]);
    assert.equal(record.certType, "user");
    assert.equal(record.role, "users");
    assert.equal(record.validBefore, "2030-01-01T01:00:00.000Z");
    assert.equal(record.revoked, false);
    assert.deepEqual(await service.listCertificates(), [result.serialNumber]);
  });

  it("keeps nothing with no_store", async () => {
    const { service } = await signingFixture();
    await service.writeRole("ephemeral", roleWrite({ ...USER_ROLE, no_store: true }));
    const result = await service.sign("ephemeral", { publicKey: clientKey().line });
    await assert.rejects(service.readCertificate(result.serialNumber), keywardError("not_found"));
    assert.deepEqual(await service.listCertificates(), []);
  });

  it("rejects a malformed serial", async () => {
    const { service } = await signingFixture();
    await assert.rejects(service.readCertificate("xyz"), keywardError("invalid_field", "serial"));
  });
});

describe("SSH issue", () => {
  for (const [keyType, keyBits, algorithm, privateType] of [
    ["ed25519", undefined, "ssh-ed25519", "ed25519"],
    ["ec", 384, "ecdsa-sha2-nistp384", "ec"],
    ["rsa", 2048, "ssh-rsa", "rsa"],
  ] as const) {
    it(`ok issues ${keyType}`, async () => {
      const { service, logger } = await signingFixture();
      const result = await service.issue("users", { keyType, keyBits, validPrincipals: "bob" });
      assert.equal(result.privateKeyType, privateType);
      const certificate = decodeCertificateLine(result.signedKey, "signed_key");
      assert.equal(certificate.key.algorithm, algorithm);
      assert.deepEqual(certificate.principals, ["bob"]);
      const privateKey = parsePrivateKey(result.privateKey, "private_key");
      assert.deepEqual(publicKeyBlob(privateKey).blob, certificate.key.blob);
      assert.equal(logText(logger).includes("PRIVATE"), false);
      const stored = JSON.stringify(await service.readCertificate(result.serialNumber));
      assert.equal(stored.includes("PRIVATE"), false);
    });
  }

  it("checks policy before generating", async () => {
    const { service } = await signingFixture();
    await assert.rejects(
      service.issue("users", { keyType: "ed25519", validPrincipals: "mallory" }),
      keywardError("name_not_allowed", "valid_principals"),
    );
    await assert.rejects(
      service.issue("users", { keyType: "dsa" }),
      keywardError("unsupported_key_type", "key_type"),
    );
  });
});
