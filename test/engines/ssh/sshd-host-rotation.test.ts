import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it, type TestContext } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import { fingerprintSha256 } from "../../../src/engines/ssh/public-keys.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  createSshRouteFixture,
  FixedClock,
  HOST_ROLE,
  type SshRouteFixture,
  tempFiles,
} from "./fixtures.ts";
import { KeywardClient, PrivateSshd, sshLogin } from "./sshd.ts";

const HOST_ALIAS = "server.example.com";
const HOST_PATTERN = "*.example.com";
const PRINCIPAL = "alice";

// The ssh client checks the server only against `@cert-authority` lines
// rendered by Keyward's known_hosts route, with StrictHostKeyChecking=yes,
// while the host CA rotates through every phase and sshd is reloaded with
// each re-issued host certificate.
describe("sshd host CA rotation", () => {
  const folder = tempFiles("keyward-sshd-host-");
  let fixture: SshRouteFixture;
  let keyward: KeywardClient;
  let sshd: PrivateSshd | undefined;
  let available = true;
  /** known_hosts as a client downloaded it before the rotation and never refreshed. */
  let staleKnownHosts = "";
  /** The host key and certificate sshd started with, signed by the first host CA key. */
  let firstHost: { privateKey: string; certificate: string } | undefined;
  let logins = 0;

  before(async () => {
    // sshd and ssh check validity against the real time.
    fixture = await createSshRouteFixture({
      sqlite: true,
      clock: new FixedClock(new Date().toISOString()),
    });
    keyward = new KeywardClient(await fixture.app.listen({ host: "127.0.0.1", port: 0 }));
    await keyward.write("config/ca", { key_type: "ssh-ed25519" });
    await keyward.write("config/ca/host", { key_type: "ecdsa-sha2-nistp256" });
    await keyward.write("roles/users", {
      key_type: "ca",
      allow_user_certificates: true,
      allowed_users: PRINCIPAL,
      default_user: PRINCIPAL,
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

  /** Issues a host key and certificate and returns them with the id of the CA key that signed it. */
  async function issueHost() {
    const host = await keyward.write("issue/hosts", {
      key_type: "ed25519",
      cert_type: "host",
      valid_principals: HOST_ALIAS,
    });
    const certificate = decodeCertificateLine(host.signed_key, "signed_key");
    return {
      privateKey: host.private_key as string,
      certificate: host.signed_key as string,
      caKeyId: fingerprintSha256(certificate.signatureKey.blob),
    };
  }

  /** Re-issues the host certificate from the signing host CA key and reloads sshd with it. */
  async function reissueHost(expectedCaKeyId: string): Promise<void> {
    const host = await issueHost();
    assert.equal(host.caKeyId, expectedCaKeyId, "the host certificate's signing CA");
    await (sshd as PrivateSshd).replaceHostKey(host);
  }

  async function hostCa() {
    const info = await keyward.read("config/ca/host");
    const keyId = (state: string) =>
      (info.keys as { id: string; state: string }[]).find((key) => key.state === state)?.id ?? "";
    return { phase: info.rotation_phase, active: keyId("active"), next: keyId("next") };
  }

  async function knownHosts(): Promise<string> {
    return (await keyward.download(`known_hosts?host_pattern=${HOST_PATTERN}`)).toString();
  }

  async function login(knownHostsText: string, options: string[] = []) {
    const issued = await keyward.write("issue/users", { key_type: "ed25519" });
    return sshLogin(sshd as PrivateSshd, folder, {
      name: `user-${++logins}`,
      privateKey: issued.private_key,
      certificate: issued.signed_key,
      knownHosts: knownHostsText,
      hostAlias: HOST_ALIAS,
      options,
    });
  }

  /** Logs in with `known_hosts` freshly downloaded from Keyward, which must list `caLines` CA keys. */
  async function assertLogin(step: string, caLines: number): Promise<void> {
    const text = await knownHosts();
    const authorities = text.split("\n").filter((line) => line.startsWith("@cert-authority "));
    assert.equal(authorities.length, caLines, `${step}: known_hosts:\n${text}`);
    assert.equal(text.split("\n").filter(Boolean).length, caLines, `${step}: only CA lines`);
    const result = await login(text);
    assert.equal(result.status, 0, `${step}: ${result.output}\n${sshd?.log}`);
  }

  async function assertHostRejected(step: string, knownHostsText: string): Promise<void> {
    const result = await login(knownHostsText);
    assert.equal(result.status, 255, `${step}: ${result.output}`);
    assert.match(result.output, /Host key verification failed/, step);
  }

  it("starts with the first host CA", async (t) => {
    if (!peersReady(t)) return;
    const first = await hostCa();
    const host = await issueHost();
    assert.equal(host.caKeyId, first.active);
    firstHost = host;
    try {
      sshd = await PrivateSshd.start(folder, host);
    } catch (error) {
      available = false;
      throw error;
    }
    writeFileSync(sshd.files.principals, `${PRINCIPAL}\n`);
    writeFileSync(sshd.files.trustedUserCaKeys, await keyward.download("public_key"));
    writeFileSync(sshd.files.revokedKeys, await keyward.download("krl"));
    staleKnownHosts = await knownHosts();
    await assertLogin("before rotation", 1);
  });

  it("logs in through a rolled back prepare", async (t) => {
    if (!peersReady(t) || !sshd) return;
    await keyward.write("config/ca/host/rotate/prepare", { key_type: "ssh-ed25519" });
    await assertLogin("prepared", 2);
    await keyward.write("config/ca/host/rotate/rollback");
    assert.equal((await hostCa()).phase, "none");
    await assertLogin("prepare rolled back", 1);
  });

  it("logs in through every phase", async (t) => {
    if (!peersReady(t) || !sshd) return;
    const old = await hostCa();
    await keyward.write("config/ca/host/rotate/prepare", { key_type: "ssh-ed25519" });
    const prepared = await hostCa();
    assert.equal(prepared.phase, "prepared");
    await assertLogin("prepared", 2);
    const staleResult = await login(staleKnownHosts);
    assert.equal(staleResult.status, 0, `prepared, stale known_hosts: ${staleResult.output}`);

    await keyward.write("config/ca/host/rotate/switch");
    assert.equal((await hostCa()).active, prepared.next);
    await assertLogin("switched, old host certificate", 2);
    await reissueHost(prepared.next);
    await assertLogin("switched, re-issued host certificate", 2);
    // A client that never refreshed known_hosts trusts only the old CA.
    await assertHostRejected("switched, stale known_hosts", staleKnownHosts);

    await keyward.write("config/ca/host/rotate/rollback");
    const rolledBack = await hostCa();
    assert.equal(rolledBack.phase, "prepared");
    assert.equal(rolledBack.active, old.active);
    await assertLogin("switch rolled back, new host certificate", 2);
    await reissueHost(old.active);
    await assertLogin("switch rolled back, re-issued host certificate", 2);

    await keyward.write("config/ca/host/rotate/switch");
    await reissueHost(prepared.next);
    await assertLogin("switched again", 2);

    await keyward.write("config/ca/host/rotate/retire");
    assert.equal((await hostCa()).phase, "none");
    await assertLogin("retired", 1);
    await assertHostRejected("retired, stale known_hosts", staleKnownHosts);
  });

  it("revokes the retired host CA", async (t) => {
    if (!peersReady(t) || !sshd || !firstHost) return;
    // A host still presenting a certificate from the retired key, to a
    // client whose known_hosts still trusts that key: only the KRL, through
    // ssh's RevokedHostKeys, rejects it.
    await sshd.replaceHostKey(firstHost);
    const krl = folder.write("host-rotation.krl", await keyward.download("krl"));
    const accepted = await login(staleKnownHosts);
    assert.equal(accepted.status, 0, `without the KRL: ${accepted.output}`);
    const rejected = await login(staleKnownHosts, [`RevokedHostKeys=${krl}`]);
    assert.equal(rejected.status, 255, rejected.output);
    assert.match(rejected.output, /Host key \S+ \S+ revoked by file/);
    assert.match(rejected.output, /Host key verification failed/);
  });
});
