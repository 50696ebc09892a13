import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fingerprintSha256, parsePublicKeyLine } from "../../../src/engines/ssh/public-keys.ts";
import {
  clientKey,
  createSshFixture,
  DSA_PUBLIC_KEY,
  decodeKrl,
  keywardError,
  roleWrite,
  USER_ROLE,
} from "./fixtures.ts";

async function revocationFixture() {
  const fixture = await createSshFixture();
  const ca = await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
  await fixture.service.writeRole("users", roleWrite({ ...USER_ROLE, allow_user_key_ids: true }));
  await fixture.service.writeRole("ephemeral", roleWrite({ ...USER_ROLE, no_store: true }));
  const caBlob = parsePublicKeyLine(ca.publicKey, "ca").blob.toString("base64");
  return { ...fixture, caPublicKey: ca.publicKey, caBlob };
}

describe("SSH revocation", () => {
  it("serves an empty KRL at first", async () => {
    const { service } = await revocationFixture();
    const krl = decodeKrl(await service.krl());
    assert.equal(krl.version, 0n);
    assert.equal(krl.certificates.size, 0);
    assert.deepEqual(krl.sha256Fingerprints, []);
  });

  it("revokes by serial under the signing CA", async () => {
    const { service, caBlob, clock } = await revocationFixture();
    const signed = await service.sign("users", { publicKey: clientKey().line });
    clock.advance(1000);
    const outcome = await service.revoke({ serialNumber: signed.serialNumber.toUpperCase() });
    assert.deepEqual(outcome.value, {
      revokedBy: "serial_number",
      krlVersion: 1,
      certificatesRevoked: [signed.serialNumber],
    });
    assert.deepEqual(outcome.warnings, []);
    const krl = decodeKrl(await service.krl());
    assert.equal(krl.version, 1n);
    assert.equal(krl.generatedAt, BigInt(Date.parse("2030-01-01T00:00:01Z") / 1000));
    assert.deepEqual(krl.certificates.get(caBlob)?.serials, [signed.serialNumber]);
    const record = await service.readCertificate(signed.serialNumber);
    assert.equal(record.revoked, true);
    assert.equal(record.revokedAt, "2030-01-01T00:00:01.000Z");
  });

  it("revokes an unknown serial for every CA", async () => {
    const { service } = await revocationFixture();
    const signed = await service.sign("ephemeral", { publicKey: clientKey().line });
    const outcome = await service.revoke({ serialNumber: signed.serialNumber });
    assert.equal(outcome.warnings.length, 1);
    const krl = decodeKrl(await service.krl());
    assert.deepEqual(krl.certificates.get("")?.serials, [signed.serialNumber]);
  });

  it("repeats a revocation without change", async () => {
    const { service } = await revocationFixture();
    const signed = await service.sign("users", { publicKey: clientKey().line });
    await service.revoke({ serialNumber: signed.serialNumber });
    const again = await service.revoke({ serialNumber: signed.serialNumber });
    assert.equal(again.value.krlVersion, 1);
    assert.deepEqual(again.value.certificatesRevoked, []);
    assert.match(again.warnings[0] ?? "", /already revoked/);
  });

  it("revokes by key ID", async () => {
    const { service } = await revocationFixture();
    const first = await service.sign("users", { publicKey: clientKey().line, keyId: "laptop-7" });
    const second = await service.sign("users", { publicKey: clientKey().line, keyId: "laptop-7" });
    const other = await service.sign("users", { publicKey: clientKey().line, keyId: "desk-1" });
    const outcome = await service.revoke({ keyId: "laptop-7" });
    assert.deepEqual(
      [...outcome.value.certificatesRevoked].sort(),
      [first.serialNumber, second.serialNumber].sort(),
    );
    assert.equal((await service.readCertificate(other.serialNumber)).revoked, false);
    assert.deepEqual(decodeKrl(await service.krl()).certificates.get("")?.keyIds, ["laptop-7"]);
  });

  it("revokes a public key and its certificates", async () => {
    const { service } = await revocationFixture();
    const key = clientKey("ec");
    const signed = await service.sign("users", { publicKey: key.line });
    const outcome = await service.revoke({ publicKey: key.line });
    assert.deepEqual(outcome.value.certificatesRevoked, [signed.serialNumber]);
    const fingerprint = fingerprintSha256(parsePublicKeyLine(key.line, "k").blob);
    assert.deepEqual(decodeKrl(await service.krl()).sha256Fingerprints, [fingerprint]);
  });

  it("revokes a certificate line by serial", async () => {
    const { service, caBlob } = await revocationFixture();
    const signed = await service.sign("users", { publicKey: clientKey().line });
    const outcome = await service.revoke({ publicKey: signed.signedKey });
    assert.deepEqual(outcome.value.certificatesRevoked, [signed.serialNumber]);
    assert.deepEqual(decodeKrl(await service.krl()).certificates.get(caBlob)?.serials, [
      signed.serialNumber,
    ]);
  });

  it("revokes a retired CA key", async () => {
    const { service, caPublicKey } = await revocationFixture();
    await service.prepareCaRotation("user", { keyType: "ssh-ed25519" });
    await service.switchCa("user");
    await service.retireCa("user");
    const fingerprint = fingerprintSha256(parsePublicKeyLine(caPublicKey, "ca").blob);
    assert.deepEqual(decodeKrl(await service.krl()).sha256Fingerprints, [fingerprint]);
  });

  for (const [name, request, code, field] of [
    ["fail nothing to revoke", {}, "invalid_request", "serial_number"],
    ["fail two fields", { serialNumber: "01", keyId: "x" }, "invalid_request", "serial_number"],
    ["fail serial with letters", { serialNumber: "xyz" }, "invalid_field", "serial_number"],
    ["fail serial too long", { serialNumber: "1".repeat(17) }, "invalid_field", "serial_number"],
    ["fail negative serial", { serialNumber: "-1" }, "invalid_field", "serial_number"],
    ["fail malformed key", { publicKey: "ssh-ed25519 AAAA" }, "invalid_field", "public_key"],
  ] as const) {
    it(name, async () => {
      const { service } = await revocationFixture();
      await assert.rejects(service.revoke(request), keywardError(code, field));
    });
  }

  it("keeps the KRL when a write fails", async () => {
    const fixture = await revocationFixture();
    const signed = await fixture.service.sign("users", { publicKey: clientKey().line });
    (fixture.barrier as unknown as { failWrites: boolean }).failWrites = true;
    await assert.rejects(
      fixture.service.revoke({ serialNumber: signed.serialNumber }),
      keywardError("storage_failure"),
    );
    (fixture.barrier as unknown as { failWrites: boolean }).failWrites = false;
    assert.equal(decodeKrl(await fixture.service.krl()).version, 0n);
  });
});

describe("SSH legacy key inventory", () => {
  it("fingerprints and flags weak keys", async () => {
    const { service } = await revocationFixture();
    const strong = clientKey("ed25519");
    const info = await service.registerLegacyKey("deploy", strong.line);
    assert.equal(info.fingerprint, fingerprintSha256(parsePublicKeyLine(strong.line, "k").blob));
    assert.equal(info.weak, false);
    assert.equal(info.comment, "client@test");
    const dsa = await service.registerLegacyKey("old-dsa", DSA_PUBLIC_KEY);
    assert.equal(dsa.algorithm, "ssh-dss");
    assert.equal(dsa.bits, 1024);
    assert.equal(dsa.weak, true);
    const rsa = await service.registerLegacyKey("old-rsa", clientKey("rsa", 1024).line);
    assert.equal(rsa.weak, true);
    assert.match(rsa.weakReason, /1024 bits/);
    assert.equal(
      (await service.registerLegacyKey("new-rsa", clientKey("rsa", 2048).line)).weak,
      false,
    );
    assert.deepEqual(await service.listLegacyKeys(), ["deploy", "new-rsa", "old-dsa", "old-rsa"]);
  });

  it("renders authorized_keys without revoked keys", async () => {
    const { service } = await revocationFixture();
    const kept = clientKey();
    const revoked = clientKey();
    await service.registerLegacyKey("a-kept", kept.line, "kept key");
    await service.registerLegacyKey("b-revoked", revoked.line);
    await service.revoke({ publicKey: revoked.line });
    const keptLine = kept.line.replace(" client@test", "");
    assert.equal(await service.authorizedKeys(), `${keptLine} kept key\n`);
    assert.equal((await service.readLegacyKey("b-revoked")).revoked, true);
  });

  it("renders @revoked known_hosts lines", async () => {
    const { service, caPublicKey } = await revocationFixture();
    const revoked = clientKey();
    await service.revoke({ publicKey: revoked.line });
    const plain = revoked.line.replace(" client@test", "");
    assert.equal(
      await service.knownHosts(),
      `@cert-authority * ${caPublicKey}\n@revoked * ${plain}\n`,
    );
  });

  it("rejects a certificate as a legacy key", async () => {
    const { service } = await revocationFixture();
    const signed = await service.sign("users", { publicKey: clientKey().line });
    await assert.rejects(
      service.registerLegacyKey("cert", signed.signedKey),
      keywardError("invalid_field", "public_key"),
    );
  });
});
