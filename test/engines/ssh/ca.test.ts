import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import { encodeOpensshPrivateKey } from "../../../src/engines/ssh/private-keys.ts";
import { formatPublicKeyLine, publicKeyBlob } from "../../../src/engines/ssh/public-keys.ts";
import {
  clientKey,
  createSshFixture,
  HOST_ROLE,
  keywardError,
  logText,
  roleWrite,
  type SshFixture,
  USER_ROLE,
} from "./fixtures.ts";

/** Returns the CA key that signed a certificate line, in one-line form. */
function signerOf(signedKey: string): string {
  const certificate = decodeCertificateLine(signedKey, "signed_key");
  return formatPublicKeyLine(certificate.signatureKey.algorithm, certificate.signatureKey.blob);
}

describe("SSH CA configuration", () => {
  let fixture: SshFixture;
  before(async () => {
    fixture = await createSshFixture({ sqlite: true });
  });
  after(async () => fixture.close());

  for (const [keyType, keyBits, bits] of [
    ["ssh-ed25519", undefined, 256],
    ["ecdsa-sha2-nistp256", undefined, 256],
    ["ecdsa-sha2-nistp384", undefined, 384],
    ["ssh-rsa", 2048, 2048],
    ["ec", 384, 384],
  ] as const) {
    it(`ok generates ${keyType} ${keyBits ?? ""}`.trim(), async () => {
      const { service } = await createSshFixture();
      const info = await service.configureCa("user", { keyType, keyBits });
      assert.equal(info.keys.length, 1);
      assert.equal(info.keys[0]?.bits, bits);
      assert.equal(info.keys[0]?.state, "active");
      assert.equal(info.rotationPhase, "none");
      assert.match(info.publicKey, /^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/]+=*$/);
      assert.equal(await service.trustedCaKeys("user"), `${info.publicKey}\n`);
    });
  }

  it("never returns the private key", async () => {
    const info = await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
    assert.equal(JSON.stringify(info).includes("PRIVATE"), false);
    assert.equal(logText(fixture.logger).includes("PRIVATE"), false);
  });

  it("rejects a second configuration", async () => {
    await assert.rejects(
      fixture.service.configureCa("user", { keyType: "ssh-ed25519" }),
      keywardError("already_exists"),
    );
  });

  it("host CA falls back to user CA", async () => {
    const user = await fixture.service.readCa("user");
    const host = await fixture.service.readCa("host");
    assert.equal(host.publicKey, user.publicKey);
    assert.equal(host.sharedWithUserCa, true);
  });

  it("separate host CA signs host certificates", async () => {
    const { service } = await createSshFixture();
    const user = await service.configureCa("user", { keyType: "ssh-ed25519" });
    const host = await service.configureCa("host", { keyType: "ecdsa-sha2-nistp256" });
    assert.notEqual(user.publicKey, host.publicKey);
    await service.writeRole("hosts", roleWrite(HOST_ROLE));
    await service.writeRole("users", roleWrite(USER_ROLE));
    const hostCert = await service.sign("hosts", {
      publicKey: clientKey().line,
      certType: "host",
      validPrincipals: "web.example.com",
    });
    const userCert = await service.sign("users", { publicKey: clientKey().line });
    assert.equal(signerOf(hostCert.signedKey), host.publicKey);
    assert.equal(signerOf(userCert.signedKey), user.publicKey);
  });

  it("imports an OpenSSH private key", async () => {
    const { service } = await createSshFixture();
    const pair = generateKeyPairSync("ed25519");
    const { algorithm, blob } = publicKeyBlob(pair.publicKey);
    const info = await service.configureCa("user", {
      privateKey: encodeOpensshPrivateKey(pair.privateKey),
      publicKey: formatPublicKeyLine(algorithm, blob, "ca"),
    });
    assert.equal(info.publicKey, formatPublicKeyLine(algorithm, blob));
    assert.equal(info.keys[0]?.generated, false);
  });

  it("imports a PEM private key", async () => {
    const { service } = await createSshFixture();
    const pair = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const pem = pair.privateKey.export({ format: "pem", type: "sec1" }) as string;
    const info = await service.configureCa("user", { privateKey: pem });
    assert.equal(info.keys[0]?.algorithm, "ecdsa-sha2-nistp384");
  });

  it("rejects a mismatched public key", async () => {
    const { service } = await createSshFixture();
    const pair = generateKeyPairSync("ed25519");
    await assert.rejects(
      service.configureCa("user", {
        privateKey: encodeOpensshPrivateKey(pair.privateKey),
        publicKey: clientKey().line,
      }),
      keywardError("invalid_field", "public_key"),
    );
  });

  it("rejects an RSA 1024 CA key", async () => {
    const { service } = await createSshFixture();
    const pair = generateKeyPairSync("rsa", { modulusLength: 1024 });
    await assert.rejects(
      service.configureCa("user", {
        privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string,
      }),
      keywardError("invalid_field", "private_key"),
    );
  });

  it("rejects ssh-dss as CA key type", async () => {
    const { service } = await createSshFixture();
    await assert.rejects(
      service.configureCa("user", { keyType: "ssh-dss" }),
      keywardError("unsupported_key_type", "key_type"),
    );
  });

  it("rejects reads while sealed", async () => {
    const sealedFixture = await createSshFixture();
    await sealedFixture.service.configureCa("user", { keyType: "ssh-ed25519" });
    (sealedFixture.barrier as unknown as { sealed: boolean }).sealed = true;
    await assert.rejects(sealedFixture.service.readCa("user"), keywardError("sealed"));
    await assert.rejects(sealedFixture.service.krl(), keywardError("sealed"));
  });

  it("deletes the CA", async () => {
    const { service } = await createSshFixture();
    await service.configureCa("user", { keyType: "ssh-ed25519" });
    await service.deleteCa("user");
    await assert.rejects(service.readCa("user"), keywardError("not_found"));
    await assert.rejects(service.trustedCaKeys("user"), keywardError("not_found"));
  });
});

describe("SSH CA rotation", () => {
  async function rotatingFixture() {
    const fixture = await createSshFixture();
    const first = await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
    await fixture.service.writeRole("users", roleWrite(USER_ROLE));
    return { ...fixture, first: first.publicKey };
  }

  it("walks through every phase", async () => {
    const { service, first } = await rotatingFixture();

    const prepared = await service.prepareCaRotation("user", { keyType: "ecdsa-sha2-nistp256" });
    const second = prepared.keys.find((key) => key.state === "next")?.publicKey as string;
    assert.equal(prepared.rotationPhase, "prepared");
    assert.equal(await service.trustedCaKeys("user"), `${first}\n${second}\n`);
    const duringPrepare = await service.sign("users", { publicKey: clientKey().line });
    assert.equal(signerOf(duringPrepare.signedKey), first);

    const switched = await service.switchCa("user");
    assert.equal(switched.rotationPhase, "switched");
    assert.equal(switched.publicKey, second);
    assert.equal(await service.trustedCaKeys("user"), `${second}\n${first}\n`);
    const duringSwitch = await service.sign("users", { publicKey: clientKey().line });
    assert.equal(signerOf(duringSwitch.signedKey), second);

    const retired = await service.retireCa("user");
    assert.equal(retired.rotationPhase, "none");
    assert.equal(await service.trustedCaKeys("user"), `${second}\n`);
    await assert.rejects(service.rollbackCa("user"), keywardError("invalid_state"));
  });

  it("rolls back a prepared key", async () => {
    const { service, first } = await rotatingFixture();
    await service.prepareCaRotation("user", { keyType: "ssh-ed25519" });
    const rolledBack = await service.rollbackCa("user");
    assert.equal(rolledBack.rotationPhase, "none");
    assert.equal(await service.trustedCaKeys("user"), `${first}\n`);
  });

  it("rolls back a switch", async () => {
    const { service, first } = await rotatingFixture();
    await service.prepareCaRotation("user", { keyType: "ssh-ed25519" });
    await service.switchCa("user");
    const rolledBack = await service.rollbackCa("user");
    assert.equal(rolledBack.rotationPhase, "prepared");
    assert.equal(rolledBack.publicKey, first);
    const signed = await service.sign("users", { publicKey: clientKey().line });
    assert.equal(signerOf(signed.signedKey), first);
  });

  it("rejects phases out of order", async () => {
    const { service } = await rotatingFixture();
    await assert.rejects(service.switchCa("user"), keywardError("invalid_state"));
    await assert.rejects(service.retireCa("user"), keywardError("invalid_state"));
    await assert.rejects(service.rollbackCa("user"), keywardError("invalid_state"));
    await service.prepareCaRotation("user", { keyType: "ssh-ed25519" });
    await assert.rejects(
      service.prepareCaRotation("user", { keyType: "ssh-ed25519" }),
      keywardError("invalid_state"),
    );
    await assert.rejects(service.retireCa("user"), keywardError("invalid_state"));
  });

  it("rejects rotating a shared host CA", async () => {
    const { service } = await rotatingFixture();
    await assert.rejects(
      service.prepareCaRotation("host", { keyType: "ssh-ed25519" }),
      keywardError("invalid_state"),
    );
    for (const phase of [service.switchCa, service.rollbackCa, service.retireCa]) {
      await assert.rejects(phase.call(service, "host"), keywardError("invalid_state"));
    }
  });

  it("rejects rotating without any CA", async () => {
    const { service } = await createSshFixture();
    for (const kind of ["user", "host"] as const) {
      await assert.rejects(
        service.prepareCaRotation(kind, { keyType: "ssh-ed25519" }),
        keywardError("not_found"),
      );
      await assert.rejects(service.switchCa(kind), keywardError("not_found"));
    }
  });

  it("lists both host CAs in known_hosts", async () => {
    const { service } = await createSshFixture();
    const first = await service.configureCa("host", { keyType: "ssh-ed25519" });
    const prepared = await service.prepareCaRotation("host", { keyType: "ssh-ed25519" });
    const second = prepared.keys.find((key) => key.state === "next")?.publicKey;
    assert.equal(
      await service.knownHosts("*.example.com"),
      `@cert-authority *.example.com ${first.publicKey}\n@cert-authority *.example.com ${second}\n`,
    );
    await assert.rejects(service.knownHosts("a b"), keywardError("invalid_field", "host_pattern"));
  });

  it("keeps the slot when a write fails", async () => {
    const fixture = await createSshFixture();
    const { service } = fixture;
    const first = await service.configureCa("user", { keyType: "ssh-ed25519" });
    (fixture.barrier as unknown as { failWrites: boolean }).failWrites = true;
    await assert.rejects(
      service.prepareCaRotation("user", { keyType: "ssh-ed25519" }),
      keywardError("storage_failure"),
    );
    (fixture.barrier as unknown as { failWrites: boolean }).failWrites = false;
    const info = await service.readCa("user");
    assert.equal(info.rotationPhase, "none");
    assert.equal(info.publicKey, first.publicKey);
  });
});
