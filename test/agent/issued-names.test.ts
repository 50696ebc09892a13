import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type CertificateKeyring,
  saveCertificateKeyring,
} from "../../src/agent/certificate-artifacts.ts";
import type { CertificateArtifactConfig } from "../../src/agent/certificate-config.ts";
import { generateCertificateKey, makeCertificateCsr } from "../../src/agent/certificate-keys.ts";
import { DeviceClient } from "../../src/agent/client.ts";
import { enrol } from "../../src/agent/enrolment.ts";
import { IDENTITY_FILES, loadIdentity } from "../../src/agent/identity.ts";
import { type InstallContext, installArtifact } from "../../src/agent/install.ts";
import type { Artifact } from "../../src/agent/protocol.ts";
import { emptyState, saveState } from "../../src/agent/state.ts";
import { HostileServer } from "./hostile-server.ts";

const DEVICE = "gw-1";
const TOKEN = `kwb.${"A".repeat(43)}`;

describe("identity certificate names", () => {
  const server = new HostileServer();
  before(() => server.start());
  after(() => server.stop());

  /**
   * Responds to enrolment with a certificate for the CSR's key whose subject is
   * `subject`. `times` replaces the response's expiry and renewal time.
   */
  function issueAs(
    subject: string,
    times?: (notAfter: number) => { expiration: number; renew_after: number },
  ): void {
    server.handler = async (_request, body, response) => {
      const { csr } = JSON.parse(body) as { csr: string };
      const issued = await server.sign(csr, subject);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          request_id: "r1",
          data: {
            device: DEVICE,
            device_id: "d1",
            certificate: issued.pem,
            ca_chain: [server.caPem],
            serial_number: issued.serial,
            expiration: Math.floor(issued.notAfter / 1000),
            renew_after: Math.floor(issued.notAfter / 1000) - 600,
            ...times?.(Math.floor(issued.notAfter / 1000)),
          },
        }),
      );
    };
  }

  async function enrolAgainst(): Promise<{
    stateDir: string;
    error: unknown;
    enrollment?: Awaited<ReturnType<typeof enrol>>["enrollment"];
  }> {
    const stateDir = mkdtempSync(join(tmpdir(), "keyward-agent-names-"));
    const client = new DeviceClient(new URL(server.url), Buffer.from(server.caPem));
    try {
      const identity = await loadIdentity(stateDir);
      const { enrollment } = await enrol(
        { device: DEVICE, stateDir, client },
        identity,
        TOKEN,
        false,
      );
      return { stateDir, error: undefined, enrollment };
    } catch (error) {
      return { stateDir, error };
    } finally {
      client.close();
    }
  }

  it("rejects another device's common name", async () => {
    issueAs("CN=gw-2");
    const { stateDir, error } = await enrolAgainst();
    assert.ok(error instanceof Error, "enrolment must fail");
    assert.match(error.message, /common name is "gw-2", not the device name "gw-1"/);
    assert.equal(existsSync(join(stateDir, IDENTITY_FILES.certificate)), false);
  });

  it("rejects a second common name", async () => {
    issueAs("CN=gw-1, CN=gw-2");
    const { stateDir, error } = await enrolAgainst();
    assert.ok(error instanceof Error, "enrolment must fail");
    assert.match(error.message, /common name/);
    assert.equal(existsSync(join(stateDir, IDENTITY_FILES.certificate)), false);
  });

  it("replaces a renewal time after expiry", async () => {
    issueAs("CN=gw-1", (notAfter) => ({
      expiration: notAfter + 86_400,
      renew_after: notAfter + 60,
    }));
    const { error, enrollment } = await enrolAgainst();
    assert.equal(error, undefined);
    assert.ok(enrollment);
    // A renewal time after expiry would leave the agent unable to renew.
    assert.ok(enrollment.renew_after < enrollment.expiration);
  });

  it("keeps a renewal time within validity", async () => {
    issueAs("CN=gw-1", (notAfter) => ({ expiration: notAfter, renew_after: notAfter - 600 }));
    const { error, enrollment } = await enrolAgainst();
    assert.equal(error, undefined);
    assert.ok(enrollment);
    assert.equal(enrollment.renew_after, enrollment.expiration - 600);
  });

  it("accepts the device's own name", async () => {
    issueAs("CN=gw-1");
    const { stateDir, error } = await enrolAgainst();
    assert.equal(error, undefined);
    assert.ok(existsSync(join(stateDir, IDENTITY_FILES.certificate)));
  });
});

describe("service certificate names", () => {
  const signer = new HostileServer();
  before(() => signer.start());
  after(() => signer.stop());

  const COMMON_NAME = "gw-1.vpn.example.net";
  const ALT_NAMES = ["gw-1.vpn.example.net", "192.0.2.1"];

  async function setup() {
    const dir = mkdtempSync(join(tmpdir(), "keyward-agent-service-names-"));
    const key = generateCertificateKey("ec-p256");
    const keyring: CertificateKeyring = {
      format: 1,
      certificates: {
        "certificate:ike": {
          pending: {
            private_key: key.privateKeyPem,
            public_key: key.publicKeySpki,
            key_type: "ec-p256",
            common_name: COMMON_NAME,
            alt_names: ALT_NAMES,
            created_at: "2030-01-01T00:00:00.000Z",
          },
        },
      },
    };
    await saveCertificateKeyring(dir, keyring);
    const csr = await makeCertificateCsr(key, "ec-p256", {
      commonName: COMMON_NAME,
      altNames: ALT_NAMES,
    });
    const context: InstallContext & { stateDir: string } = {
      state: emptyState(),
      keyring: { format: 1, peers: {} },
      encryptionKey: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
      shell: "/bin/sh",
      now: () => Date.now(),
      saveState: () => saveState(dir, context.state),
      stateDir: dir,
    };
    const entry: CertificateArtifactConfig = {
      kind: "certificate",
      id: "certificate:ike",
      name: "ike",
      path: join(dir, "service.crt"),
      keyPath: join(dir, "service.key"),
      chainPath: undefined,
      caPath: undefined,
      keyType: "ec-p256",
      mode: 0o644,
      keyMode: 0o600,
      uid: undefined,
      gid: undefined,
      check: undefined,
      reload: undefined,
      commandTimeoutMs: 10_000,
    };
    const artifact = (certificate: string): Artifact => ({
      id: "certificate:ike",
      kind: "certificate",
      version: 2,
      fields: {
        name: "ike",
        common_name: COMMON_NAME,
        alt_names: ALT_NAMES,
        certificate,
        ca_chain: [signer.caPem],
        renew_after: null,
      },
      secrets: {},
      next: null,
    });
    return { dir, csr, context, entry, artifact };
  }

  const cases: [string, string, { dns?: string[]; ip?: string[] }][] = [
    [
      "another common name",
      "CN=mail.example.net",
      { dns: ["gw-1.vpn.example.net"], ip: ["192.0.2.1"] },
    ],
    [
      "an extra DNS name",
      `CN=${COMMON_NAME}`,
      { dns: ["gw-1.vpn.example.net", "bank.example"], ip: ["192.0.2.1"] },
    ],
    ["a missing IP address", `CN=${COMMON_NAME}`, { dns: ["gw-1.vpn.example.net"] }],
    [
      "another IP address",
      `CN=${COMMON_NAME}`,
      { dns: ["gw-1.vpn.example.net"], ip: ["192.0.2.99"] },
    ],
  ];
  for (const [label, subject, altNames] of cases) {
    it(`rejects ${label}`, async () => {
      const { csr, context, entry, artifact } = await setup();
      writeFileSync(entry.path, "old certificate\n");
      writeFileSync(entry.keyPath, "old key\n");
      const issued = await signer.sign(csr, subject, altNames);

      const outcome = await installArtifact(context, entry, artifact(issued.pem));

      assert.equal(outcome.status, "failed");
      assert.equal(readFileSync(entry.path, "utf8"), "old certificate\n");
      assert.equal(readFileSync(entry.keyPath, "utf8"), "old key\n");
    });
  }

  it("installs the requested names in any order and case", async () => {
    const { csr, context, entry, artifact } = await setup();
    const issued = await signer.sign(csr, `CN=${COMMON_NAME}`, {
      dns: ["GW-1.vpn.example.net"],
      ip: ["192.0.2.1"],
    });

    const outcome = await installArtifact(context, entry, artifact(issued.pem));

    assert.deepEqual(outcome, { status: "installed", version: 2 });
    assert.equal(
      readFileSync(entry.path, "utf8"),
      issued.pem.endsWith("\n") ? issued.pem : `${issued.pem}\n`,
    );
  });
});
