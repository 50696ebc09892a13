import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KeywardAgent } from "../../src/agent/agent.ts";
import {
  type CertificateKeyring,
  saveCertificateKeyring,
} from "../../src/agent/certificate-artifacts.ts";
import type { CertificateArtifactConfig } from "../../src/agent/certificate-config.ts";
import { generateCertificateKey } from "../../src/agent/certificate-keys.ts";
import { type ArtifactConfig, parseAgentConfig } from "../../src/agent/config.ts";
import { encryptionJwk } from "../../src/agent/identity.ts";
import { type InstallContext, installArtifact } from "../../src/agent/install.ts";
import { createAgentLogger } from "../../src/agent/logger.ts";
import type { Artifact, DeviceState } from "../../src/agent/protocol.ts";
import {
  emptyState,
  forgetWithdrawnArtifacts,
  loadState,
  STATE_FILE,
  saveState,
} from "../../src/agent/state.ts";
import { sealSecret } from "../../src/devices/sealed.ts";
import { requirePeer } from "../helpers/peers.ts";
import { FakeDeviceServer } from "./fake-device-server.ts";

const ID = "secret:radius";

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "keyward-agent-reinstall-"));
  const encryptionKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const context: InstallContext = {
    state: emptyState(),
    keyring: { format: 1, peers: {} },
    encryptionKey,
    shell: "/bin/sh",
    now: () => Date.parse("2030-01-01T00:00:00Z"),
    saveState: () => saveState(dir, context.state),
  };
  const entry = {
    kind: "secret",
    id: ID,
    name: "radius",
    trailingNewline: false,
    path: join(dir, "radius.secret"),
    mode: 0o600,
    uid: undefined,
    gid: undefined,
    check: undefined,
    reload: undefined,
    commandTimeoutMs: 10_000,
  } as ArtifactConfig;
  const artifact = async (version: number, value: string): Promise<Artifact> => ({
    id: ID,
    kind: "secret",
    version,
    fields: { name: "radius", encoding: "base64" },
    secrets: {
      value: await sealSecret(
        encryptionJwk(encryptionKey),
        { artifact: ID, version, field: "value" },
        value,
      ),
    },
    next: null,
  });
  return { dir, context, entry, artifact };
}

function stateWith(ids: string[]): DeviceState {
  return {
    device: "gw-1",
    device_id: "0",
    etag: "e",
    artifacts: ids.map((id) => ({
      id,
      kind: "secret",
      version: 1,
      fields: {},
      secrets: {},
      next: null,
    })),
  } as DeviceState;
}

describe("install content hash", () => {
  it("repeated version with new content reinstalls", async () => {
    const { context, entry, artifact } = setup();
    await installArtifact(context, entry, await artifact(1, "first"));
    context.state.reported[ID] = 1;

    const outcome = await installArtifact(context, entry, await artifact(1, "second"));

    assert.deepEqual(outcome, { status: "installed", version: 1 });
    assert.equal(readFileSync(entry.path, "utf8"), "second");
    assert.equal(context.state.reported[ID], undefined, "the version is reported again");
  });

  it("same content stays unchanged", async () => {
    const { context, entry, artifact } = setup();
    await installArtifact(context, entry, await artifact(1, "first"));
    // Sealing is randomised, so this is a new ciphertext of the same value.
    const outcome = await installArtifact(context, entry, await artifact(1, "first"));
    assert.deepEqual(outcome, { status: "unchanged", version: 1 });
  });

  it("state.json keeps the hash, not the value", async () => {
    const { dir, context, entry, artifact } = setup();
    await installArtifact(context, entry, await artifact(1, "plaintext-value-123"));
    const text = readFileSync(join(dir, STATE_FILE), "utf8");
    assert.ok(!text.includes("plaintext-value-123"), "plaintext in state.json");
    assert.match(context.state.installed[entry.path]?.sha256 ?? "", /^[0-9a-f]{64}$/);
  });

  it("older state without hash loads and reinstalls", async () => {
    const { dir, context, entry, artifact } = setup();
    writeFileSync(entry.path, "first");
    const older = {
      format: 1,
      enrollment: null,
      last_state: null,
      installed: {
        [entry.path]: {
          id: ID,
          version: 1,
          installed_at: "2029-01-01T00:00:00.000Z",
          reload_pending: false,
        },
      },
      reported: { [ID]: 1 },
    };
    writeFileSync(join(dir, STATE_FILE), JSON.stringify(older));
    context.state = await loadState(dir);
    assert.equal(context.state.installed[entry.path]?.version, 1);

    const outcome = await installArtifact(context, entry, await artifact(1, "first"));

    assert.deepEqual(outcome, { status: "installed", version: 1 });
    assert.ok(context.state.installed[entry.path]?.sha256);
    const again = await installArtifact(context, entry, await artifact(1, "first"));
    assert.equal(again.status, "unchanged");
  });
});

describe("certificate content hash", () => {
  it("new certificate for the same key reinstalls", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const { dir, context } = setup();
    const key = generateCertificateKey("ec-p256");
    const keyPath = join(dir, "service.key");
    writeFileSync(keyPath, key.privateKeyPem);
    const selfSigned = () =>
      execFileSync(
        "openssl",
        ["req", "-x509", "-key", keyPath, "-subj", "/CN=gw.example.net", "-days", "1"],
        { encoding: "utf8" },
      );
    const keyring: CertificateKeyring = {
      format: 1,
      certificates: {
        "certificate:ike": {
          current: {
            private_key: key.privateKeyPem,
            public_key: key.publicKeySpki,
            key_type: "ec-p256",
            common_name: "gw.example.net",
            alt_names: [],
            created_at: "2030-01-01T00:00:00.000Z",
          },
        },
      },
    };
    await saveCertificateKeyring(dir, keyring);
    const entry: CertificateArtifactConfig = {
      kind: "certificate",
      id: "certificate:ike",
      name: "ike",
      path: join(dir, "service.crt"),
      keyPath: join(dir, "installed.key"),
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
        common_name: "gw.example.net",
        alt_names: [],
        certificate,
        ca_chain: [],
        renew_after: null,
      },
      secrets: {},
      next: null,
    });
    const withContext = { ...context, stateDir: dir };
    const first = selfSigned();
    const second = selfSigned();
    assert.notEqual(first, second, "openssl picks a random serial");

    assert.equal((await installArtifact(withContext, entry, artifact(first))).status, "installed");
    assert.equal((await installArtifact(withContext, entry, artifact(first))).status, "unchanged");
    const outcome = await installArtifact(withContext, entry, artifact(second));

    assert.deepEqual(outcome, { status: "installed", version: 2 });
    assert.equal(readFileSync(entry.path, "utf8"), second);
  });
});

describe("withdrawn artifacts", () => {
  it("forgets records but keeps the file", async () => {
    const { context, entry, artifact } = setup();
    await installArtifact(context, entry, await artifact(1, "first"));
    context.state.reported[ID] = 1;
    context.state.reported["secret:other"] = 3;

    assert.deepEqual(forgetWithdrawnArtifacts(context.state, stateWith(["secret:other"])), [ID]);

    assert.equal(context.state.installed[entry.path], undefined);
    assert.equal(context.state.reported[ID], undefined);
    assert.equal(context.state.reported["secret:other"], 3);
    assert.ok(existsSync(entry.path), "the file stays");
  });

  it("offered artifacts are kept", async () => {
    const { context, entry, artifact } = setup();
    await installArtifact(context, entry, await artifact(1, "first"));
    assert.deepEqual(forgetWithdrawnArtifacts(context.state, stateWith([ID])), []);
    assert.equal(context.state.installed[entry.path]?.version, 1);
  });
});

describe("agent with a recreated secret", () => {
  const server = new FakeDeviceServer("gw-1");
  let dir: string;
  let secretPath: string;

  before(async () => {
    await server.start();
    dir = mkdtempSync(join(tmpdir(), "keyward-agent-recreated-"));
    writeFileSync(join(dir, "ca.pem"), server.caPem);
    mkdirSync(join(dir, "etc"));
    secretPath = join(dir, "etc", "radius.secret");
  });
  after(() => server.stop());

  async function runOnce(): Promise<boolean> {
    const config = parseAgentConfig(
      {
        server: server.url,
        ca_file: "ca.pem",
        device: server.device,
        bootstrap_token: server.bootstrapToken,
        state_dir: "state",
        poll_wait: "5s",
        artifacts: [{ kind: "secret", name: "radius", path: secretPath }],
      },
      dir,
    );
    const lines: string[] = [];
    const agent = new KeywardAgent({
      config,
      log: createAgentLogger("debug", { write: (line: string) => lines.push(line) }),
    });
    await agent.open();
    try {
      return await agent.runOnce();
    } finally {
      agent.close();
    }
  }

  it("installs and reports the repeated version", async () => {
    server.secrets = [{ name: "radius", version: 1, value: "b2xk" }];
    assert.equal(await runOnce(), true);
    assert.equal(readFileSync(secretPath, "utf8"), "b2xk");

    server.secrets = [];
    server.changed();
    await runOnce();
    assert.equal(readFileSync(secretPath, "utf8"), "b2xk", "the file stays");
    const saved = JSON.parse(readFileSync(join(dir, "state", STATE_FILE), "utf8"));
    assert.equal(saved.installed[secretPath], undefined);
    assert.equal(saved.reported[ID], undefined);

    server.secrets = [{ name: "radius", version: 1, value: "bmV3" }];
    server.changed();
    assert.equal(await runOnce(), true);
    assert.equal(readFileSync(secretPath, "utf8"), "bmV3");
    assert.deepEqual(
      server.applied.filter((item) => item.id === ID),
      [
        { id: ID, version: 1 },
        { id: ID, version: 1 },
      ],
    );
  });
});
