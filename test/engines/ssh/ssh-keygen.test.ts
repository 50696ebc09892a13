import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import {
  clientKey,
  createSshFixture,
  HOST_ROLE,
  keywardError,
  roleWrite,
  run,
  type SshFixture,
  tempFiles,
  USER_ROLE,
} from "./fixtures.ts";

/** How `ssh-keygen -L` names each key type. */
const KEY_LABELS: Record<string, string> = {
  "ssh-ed25519": "ED25519",
  "ecdsa-sha2-nistp256": "ECDSA",
  "ssh-rsa": "RSA",
};

/** Returns `ssh-keygen -L` output for a certificate line, failing the test when it does not parse. */
function listCertificate(
  files: ReturnType<typeof tempFiles>,
  name: string,
  signedKey: string,
): string {
  const path = files.write(`${name}-cert.pub`, signedKey);
  const result = run("ssh-keygen", ["-L", "-f", path]);
  assert.equal(result.status, 0, result.output);
  return result.output;
}

describe("ssh-keygen reads Keyward output", () => {
  const files = tempFiles();
  after(() => files.cleanup());

  for (const [caType, caBits, signer, caLabel] of [
    ["ssh-ed25519", undefined, "default", "ED25519"],
    ["ecdsa-sha2-nistp256", undefined, "default", "ECDSA"],
    ["ecdsa-sha2-nistp384", undefined, "default", "ECDSA"],
    ["ssh-rsa", 2048, "rsa-sha2-256", "RSA"],
    ["ssh-rsa", 2048, "rsa-sha2-512", "RSA"],
  ] as const) {
    it(`ok ${caType} CA with ${signer}`, async (t) => {
      if (!requirePeer(t, "ssh-keygen")) return;
      const { service } = await createSshFixture();
      await service.configureCa("user", { keyType: caType, keyBits: caBits });
      await service.writeRole("users", roleWrite({ ...USER_ROLE, algorithm_signer: signer }));
      await service.writeRole("hosts", roleWrite(HOST_ROLE));

      for (const [keyType, option, label] of [
        ["ed25519", undefined, "ED25519-CERT"],
        ["ec", "P-256", "ECDSA-CERT"],
        ["ec", "P-384", "ECDSA-CERT"],
        ["ec", "P-521", "ECDSA-CERT"],
        ["rsa", 2048, "RSA-CERT"],
      ] as const) {
        const user = await service.sign("users", {
          publicKey: clientKey(keyType, option).line,
          validPrincipals: "alice,bob",
          criticalOptions: {
            "force-command": "/usr/bin/uptime",
            "source-address": "127.0.0.1/32,::1",
          },
          extensions: { "permit-pty": "", "permit-port-forwarding": "" },
          ttl: "2h",
        });
        const output = listCertificate(files, "user", user.signedKey);
        assert.match(output, new RegExp(`Public key: ${label} SHA256:`));
        assert.match(output, /user certificate/);
        assert.match(
          output,
          new RegExp(
            `Signing CA: ${caLabel} SHA256:\\S+ \\(using ${signer === "default" ? caType : signer}\\)`,
          ),
        );
        assert.match(output, new RegExp(`Serial: ${BigInt(`0x${user.serialNumber}`)}`));
        assert.match(output, /Valid: from 2029-12-31T23:59:30 to 2030-01-01T02:00:00/);
        assert.match(output, /Principals: \n\s+alice\n\s+bob\n/);
        assert.match(
          output,
          /Critical Options: \n\s+force-command \/usr\/bin\/uptime\n\s+source-address 127\.0\.0\.1\/32,::1\n/,
        );
        assert.match(output, /Extensions: \n\s+permit-port-forwarding\n\s+permit-pty\n/);

        const host = await service.sign("hosts", {
          publicKey: clientKey(keyType, option).line,
          certType: "host",
          validPrincipals: "web.example.com",
        });
        const hostOutput = listCertificate(files, "host", host.signedKey);
        assert.match(hostOutput, /host certificate/);
        assert.match(hostOutput, /Principals: \n\s+web\.example\.com\n/);
        assert.match(hostOutput, /Critical Options: \(none\)/);
        assert.match(hostOutput, /Extensions: \(none\)/);
      }
    });
  }

  it("reads issued private keys", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = await createSshFixture();
    await service.configureCa("user", { keyType: "ssh-ed25519" });
    await service.writeRole("users", roleWrite(USER_ROLE));
    for (const keyType of ["ed25519", "ec", "rsa"] as const) {
      const issued = await service.issue("users", {
        keyType,
        keyBits: keyType === "rsa" ? 2048 : undefined,
      });
      const path = files.write(`issued-${keyType}`, issued.privateKey, 0o600);
      const derived = run("ssh-keygen", ["-y", "-f", path]);
      assert.equal(derived.status, 0, derived.output);

      // The key ssh-keygen derives from the private key is the one the certificate certifies.
      const [type, base64] = derived.output.trim().split(" ");
      const plain = run("ssh-keygen", [
        "-l",
        "-f",
        files.write(`issued-${keyType}.pub`, `${type} ${base64}\n`),
      ]);
      assert.equal(plain.status, 0, plain.output);
      const fingerprint = plain.output.split(" ")[1] as string;
      const listed = listCertificate(files, `issued-${keyType}`, issued.signedKey);
      assert.match(listed, /user certificate/);
      assert.ok(
        listed.includes(`Public key: ${KEY_LABELS[type as string]}-CERT ${fingerprint}`),
        listed,
      );
    }
  });

  it("matches ssh-keygen fingerprints", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = await createSshFixture();
    for (const [keyType, option] of [
      ["ed25519", undefined],
      ["ec", "P-384"],
      ["rsa", 3072],
    ] as const) {
      const key = clientKey(keyType, option);
      const info = await service.registerLegacyKey(`k-${keyType}`, key.line);
      const listed = run("ssh-keygen", ["-l", "-f", files.write(`${keyType}.pub`, key.line)]);
      assert.equal(listed.status, 0, listed.output);
      assert.equal(listed.output.split(" ")[1], info.fingerprint);
      assert.equal(Number(listed.output.split(" ")[0]), info.bits);
    }
  });

  it("rejects an ssh-keygen DSA CA key", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const path = join(files.dir, "dsa-ca");
    const generated = run("ssh-keygen", ["-q", "-t", "dsa", "-N", "", "-C", "", "-f", path]);
    assert.equal(generated.status, 0, generated.output);
    const { service } = await createSshFixture();
    await assert.rejects(
      service.configureCa("user", { privateKey: readFileSync(path, "utf8") }),
      keywardError("unsupported_key_type", "private_key"),
    );
  });
});

describe("ssh-keygen -Q checks the KRL", () => {
  const files = tempFiles();
  let fixture: SshFixture;
  before(async () => {
    fixture = await createSshFixture();
    await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
    await fixture.service.writeRole("users", roleWrite({ ...USER_ROLE, allow_user_key_ids: true }));
  });
  after(() => files.cleanup());

  /** Returns true when `ssh-keygen -Q` reports the key or certificate in `line` as revoked. */
  async function isRevoked(name: string, line: string): Promise<boolean> {
    const krl = files.write("krl", await fixture.service.krl());
    const result = run("ssh-keygen", ["-Q", "-f", krl, files.write(name, line)]);
    if (result.status === 0) {
      assert.match(result.output, /ok$/m);
      return false;
    }
    assert.match(result.output, /REVOKED/, result.output);
    return true;
  }

  it("reports revoked serials, key IDs and keys", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = fixture;
    const bySerial = await service.sign("users", { publicKey: clientKey().line });
    const byKeyId = await service.sign("users", {
      publicKey: clientKey().line,
      keyId: "stolen-laptop",
    });
    const keyHolder = clientKey("ec");
    const byKey = await service.sign("users", { publicKey: keyHolder.line });
    const untouched = await service.sign("users", { publicKey: clientKey().line });
    const plainKey = clientKey("rsa", 2048);

    for (const [name, line] of [
      ["serial-cert.pub", bySerial.signedKey],
      ["keyid-cert.pub", byKeyId.signedKey],
      ["key-cert.pub", byKey.signedKey],
      ["plain.pub", plainKey.line],
    ] as const) {
      assert.equal(await isRevoked(name, line), false, `${name} before revocation`);
    }

    await service.revoke({ serialNumber: bySerial.serialNumber });
    await service.revoke({ keyId: "stolen-laptop" });
    await service.revoke({ publicKey: keyHolder.line });
    await service.revoke({ publicKey: plainKey.line });

    assert.equal(await isRevoked("serial-cert.pub", bySerial.signedKey), true);
    assert.equal(await isRevoked("keyid-cert.pub", byKeyId.signedKey), true);
    assert.equal(await isRevoked("key-cert.pub", byKey.signedKey), true);
    assert.equal(await isRevoked("key.pub", keyHolder.line), true);
    assert.equal(await isRevoked("plain.pub", plainKey.line), true);
    assert.equal(await isRevoked("untouched-cert.pub", untouched.signedKey), false);
  });

  it("lists the KRL contents", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const krl = files.write("krl", await fixture.service.krl());
    const listed = run("ssh-keygen", ["-Q", "-l", "-f", krl]);
    assert.equal(listed.status, 0, listed.output);
    assert.match(listed.output, /# KRL version 4/);
    assert.match(listed.output, /id: stolen-laptop/);
  });
});
