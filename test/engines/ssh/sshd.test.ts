import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it, type TestContext } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import { fingerprintSha256 } from "../../../src/engines/ssh/public-keys.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { FixedClock } from "../transit/fixtures.ts";
import {
  clientKey,
  createSshRouteFixture,
  HOST_ROLE,
  run,
  type SshRouteFixture,
  tempFiles,
} from "./fixtures.ts";
import { KeywardClient, PrivateSshd, sshLogin } from "./sshd.ts";

const HOST_ALIAS = "server.example.com";
const PRINCIPAL = "alice";

interface Credential {
  name: string;
  privateKey: string;
  certificate: string;
  serial: string;
}

describe("sshd enforces Keyward certificates", () => {
  const folder = tempFiles("keyward-sshd-");
  const clock = new FixedClock(new Date().toISOString());
  let fixture: SshRouteFixture;
  let keyward: KeywardClient;
  let sshd: PrivateSshd | undefined;
  let knownHosts = "";
  let available = true;

  before(async () => {
    fixture = await createSshRouteFixture({ sqlite: true, clock });
    const address = await fixture.app.listen({ host: "127.0.0.1", port: 0 });
    keyward = new KeywardClient(address);
    await keyward.write("config/ca", { key_type: "ssh-ed25519" });
    await keyward.write("config/ca/host", { key_type: "ecdsa-sha2-nistp256" });
    await keyward.write("roles/users", {
      key_type: "ca",
      allow_user_certificates: true,
      allowed_users: PRINCIPAL,
      default_user: PRINCIPAL,
      default_extensions: { "permit-pty": "" },
      ttl: "1h",
    });
    await keyward.write("roles/hosts", HOST_ROLE);
  });

  after(async () => {
    await sshd?.stop();
    await fixture.close();
    folder.cleanup();
  });

  /** Skips the test unless every peer is installed and sshd can run (it needs root). */
  function peersReady(t: TestContext): boolean {
    for (const program of ["ssh", "sshd", "ssh-keygen"]) {
      if (!requirePeer(t, program)) return false;
    }
    if (process.getuid?.() !== 0) {
      t.skip("a private sshd needs root for privilege separation");
      return false;
    }
    return available;
  }

  /** Refreshes sshd's TrustedUserCAKeys and RevokedKeys files from Keyward's public routes. */
  async function publish(): Promise<void> {
    const server = sshd as PrivateSshd;
    writeFileSync(server.files.trustedUserCaKeys, await keyward.download("public_key"));
    writeFileSync(server.files.revokedKeys, await keyward.download("krl"));
  }

  async function issueUser(name: string, ttl = "1h"): Promise<Credential> {
    const issued = await keyward.write("issue/users", { key_type: "ed25519", ttl });
    return {
      name,
      privateKey: issued.private_key,
      certificate: issued.signed_key,
      serial: issued.serial_number,
    };
  }

  /** Matches sshd's log line for a login rejected because the credential's key is in the KRL. */
  function revokedPattern(credential: Credential): RegExp {
    const certificate = decodeCertificateLine(credential.certificate, "certificate");
    const fingerprint = fingerprintSha256(certificate.key.blob).replace(/[+/]/g, "\\$&");
    return new RegExp(`Authentication key \\S+ ${fingerprint} revoked by file`);
  }

  function login(credential: Credential) {
    return sshLogin(sshd as PrivateSshd, folder, {
      ...credential,
      knownHosts,
      hostAlias: HOST_ALIAS,
    });
  }

  function assertLogin(credential: Credential, message: string) {
    const result = login(credential);
    assert.equal(result.status, 0, `${message}: ${result.output}\n${sshd?.log}`);
  }

  /** Checks that a login fails and that sshd's log for it gives `reason`. */
  async function assertRejected(credential: Credential, message: string, reason: RegExp) {
    const server = sshd as PrivateSshd;
    const since = server.log.length;
    const result = login(credential);
    assert.equal(result.status, 255, `${message}: ${result.output}`);
    assert.match(result.output, /Permission denied/, message);
    const log = await server.waitForLog(reason, since);
    assert.match(log, reason, `${message}: ${log}`);
  }

  it("starts with a Keyward host certificate", async (t) => {
    if (!peersReady(t)) return;
    const host = await keyward.write("issue/hosts", {
      key_type: "ed25519",
      cert_type: "host",
      valid_principals: HOST_ALIAS,
    });
    try {
      sshd = await PrivateSshd.start(folder, {
        privateKey: host.private_key,
        certificate: host.signed_key,
      });
    } catch (error) {
      available = false;
      throw error;
    }
    writeFileSync(sshd.files.principals, `${PRINCIPAL}\n`);
    knownHosts = (await keyward.download("known_hosts?host_pattern=*.example.com")).toString();
    assert.match(knownHosts, /^@cert-authority \*\.example\.com ecdsa-sha2-nistp256 /);
    await publish();
  });

  it("lets a user certificate in", async (t) => {
    if (!peersReady(t) || !sshd) return;
    assertLogin(await issueUser("user-ok"), "login with a fresh user certificate");
  });

  it("rejects a host signed by another CA", async (t) => {
    if (!peersReady(t) || !sshd) return;
    const credential = await issueUser("user-other-ca");
    const otherCa = clientKey().line.replace(" client@test", "");
    const result = sshLogin(sshd, folder, {
      ...credential,
      knownHosts: `@cert-authority *.example.com ${otherCa}\n`,
      hostAlias: HOST_ALIAS,
    });
    assert.equal(result.status, 255, result.output);
    assert.match(result.output, /Host key verification failed/);
  });

  it("rejects a revoked certificate", async (t) => {
    if (!peersReady(t) || !sshd) return;
    const credential = await issueUser("user-revoked");
    assertLogin(credential, "before revocation");
    await keyward.write("revoke", { serial_number: credential.serial });
    await publish();
    await assertRejected(credential, "after revocation", revokedPattern(credential));
    const check = await krlCheck(credential);
    assert.match(check, /REVOKED/);
  });

  it("rejects an expired certificate", async (t) => {
    if (!peersReady(t) || !sshd) return;
    clock.advance(-2 * 3600 * 1000);
    const credential = await issueUser("user-expired", "1h");
    clock.advance(2 * 3600 * 1000);
    await assertRejected(credential, "expired certificate", /Certificate invalid: expired/);
  });

  it("keeps logins working during rotation", async (t) => {
    if (!peersReady(t) || !sshd) return;
    const beforeRotation = await issueUser("rotation-old");
    assertLogin(beforeRotation, "before rotation");

    await keyward.write("config/ca/user/rotate/prepare", { key_type: "ecdsa-sha2-nistp384" });
    await publish();
    assertLogin(beforeRotation, "prepared: old certificate");
    const duringPrepare = await issueUser("rotation-prepared");
    assertLogin(duringPrepare, "prepared: certificate signed by the old key");

    await keyward.write("config/ca/user/rotate/switch");
    await publish();
    const afterSwitch = await issueUser("rotation-switched");
    assertLogin(afterSwitch, "switched: certificate from the new key");
    assertLogin(beforeRotation, "switched: certificate from the old key");

    await keyward.write("config/ca/user/rotate/rollback");
    await publish();
    assertLogin(afterSwitch, "rolled back: certificate from the new key");
    assertLogin(await issueUser("rotation-rolled-back"), "rolled back: old key signs again");
    await keyward.write("config/ca/user/rotate/switch");
    await publish();

    await keyward.write("config/ca/user/rotate/retire");
    await publish();
    assertLogin(afterSwitch, "retired: certificate from the new key");
    assertLogin(await issueUser("rotation-retired"), "retired: fresh certificate");
    await assertRejected(
      beforeRotation,
      "retired: certificate from the retired key",
      revokedPattern(beforeRotation),
    );
  });

  /** Returns `ssh-keygen -Q` output for a credential's certificate against the current KRL. */
  async function krlCheck(credential: Credential): Promise<string> {
    const krl = folder.write("check.krl", await keyward.download("krl"));
    const certificate = folder.write(`${credential.name}-check-cert.pub`, credential.certificate);
    return run("ssh-keygen", ["-Q", "-f", krl, certificate]).output;
  }
});
