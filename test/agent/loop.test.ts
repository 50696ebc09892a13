import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KeywardAgent } from "../../src/agent/agent.ts";
import { type AgentConfig, parseAgentConfig } from "../../src/agent/config.ts";
import { createAgentLogger } from "../../src/agent/logger.ts";
import { x25519PublicKey } from "../../src/crypto/x25519.ts";
import { FakeDeviceServer, type FakePeer } from "./fake-device-server.ts";

const SECRET_VALUE = "c2hhcmVkIHNlY3JldCB2YWx1ZQ==";
const WG_ID = "wireguard:wireguard:office:alpha";

/** Log lines an agent wrote, parsed. */
class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  write(line: string): void {
    this.raw.push(line);
    this.lines.push(JSON.parse(line) as Record<string, unknown>);
  }
  messages(): string[] {
    return this.lines.map((line) => String(line.msg));
  }
  text(): string {
    return this.raw.join("");
  }
}

function newPeer(overrides: Partial<FakePeer> = {}): FakePeer {
  return {
    mount: "wireguard",
    network: "office",
    peer: "alpha",
    publicKey: null,
    keyVersion: 0,
    configVersion: 1,
    rotateKey: false,
    rotationNoticeMs: 1500,
    ...overrides,
  };
}

interface Setup {
  dir: string;
  config: AgentConfig;
  logs: LogCapture;
  wgPath: string;
  secretPath: string;
  agent(random?: () => number): KeywardAgent;
}

function setup(
  server: FakeDeviceServer,
  overrides: Record<string, unknown> = {},
  dir = mkdtempSync(join(tmpdir(), "keyward-agent-loop-")),
): Setup {
  writeFileSync(join(dir, "ca.pem"), server.caPem);
  const wgPath = join(dir, "etc", "wg0.conf");
  const secretPath = join(dir, "etc", "radius.secret");
  mkdirSync(join(dir, "etc"), { recursive: true });
  const config = parseAgentConfig(
    {
      server: server.url,
      ca_file: "ca.pem",
      device: server.device,
      bootstrap_token: server.bootstrapToken,
      state_dir: "state",
      poll_wait: "5s",
      artifacts: [
        {
          kind: "wireguard",
          mount: "wireguard",
          network: "office",
          peer: "alpha",
          format: "wg",
          path: wgPath,
        },
        { kind: "secret", name: "radius", path: secretPath, mode: "0640", trailing_newline: true },
      ],
      ...overrides,
    },
    dir,
  );
  const logs = new LogCapture();
  return {
    dir,
    config,
    logs,
    wgPath,
    secretPath,
    agent: (random?: () => number) =>
      new KeywardAgent({
        config,
        log: createAgentLogger("debug", logs),
        ...(random ? { random } : {}),
      }),
  };
}

/** Polls `check` every 50 ms until it returns true, failing after `ms` with `what`. */
async function eventually(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const mode = (path: string) => statSync(path).mode & 0o777;

function readKeyring(dir: string) {
  return JSON.parse(readFileSync(join(dir, "state", "wireguard-keys.json"), "utf8")) as {
    peers: Record<string, { current?: { public_key: string }; staged?: { public_key: string } }>;
  };
}

/** Returns the public key of the private key in an installed WireGuard file. */
function installedPublicKey(path: string): string {
  const line = readFileSync(path, "utf8")
    .split("\n")
    .find((text) => text.startsWith("PrivateKey = "));
  assert.ok(line, "no PrivateKey line");
  const privateKey = Buffer.from(line.slice("PrivateKey = ".length), "base64");
  return x25519PublicKey(privateKey).toString("base64");
}

describe("agent against a fake device API", () => {
  const server = new FakeDeviceServer("gw-1");
  let env: Setup;

  before(async () => {
    await server.start();
    server.secrets = [{ name: "radius", version: 1, value: SECRET_VALUE }];
    server.peers = [newPeer()];
    env = setup(server);
  });
  after(() => server.stop());

  it("once: enrols, installs, reports", async () => {
    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), true, env.logs.text());
    } finally {
      agent.close();
    }

    const enrolments = server.requests.filter((request) => request.path === "/v1/devices/enroll");
    assert.equal(enrolments.length, 1);
    assert.equal(enrolments[0]?.clientSerial, undefined);
    const states = server.requests.filter((request) => request.path === "/v1/devices/self/state");
    assert.ok(states.length >= 2);
    for (const request of states)
      assert.ok(server.validSerials.includes(request.clientSerial ?? ""));
    const enrolled = env.logs.lines.find((line) => line.msg === "enrolled");
    assert.match(String(enrolled?.serial_number), /^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    assert.ok(
      server.validSerials.includes(String(enrolled?.serial_number).replaceAll(":", "")),
      "the logged serial number is not the issued one",
    );

    // The first key registration activates at once; the install uses that key.
    assert.equal(server.registeredKeys.length, 1);
    const peer = server.peers[0] as FakePeer;
    assert.equal(peer.publicKey, server.registeredKeys[0]);
    assert.equal(installedPublicKey(env.wgPath), peer.publicKey);
    assert.ok(readFileSync(env.wgPath, "utf8").includes(`PublicKey = ${server.otherPeerKey}`));
    assert.equal(mode(env.wgPath), 0o600);
    assert.equal(readFileSync(env.secretPath, "utf8"), `${SECRET_VALUE}\n`);
    assert.equal(mode(env.secretPath), 0o640);

    assert.deepEqual(
      [...server.applied].sort((a, b) => a.id.localeCompare(b.id)),
      [
        { id: "secret:radius", version: 1 },
        { id: WG_ID, version: peer.configVersion },
      ],
    );
    for (const file of [
      "identity-key.pem",
      "encryption-key.pem",
      "state.json",
      "wireguard-keys.json",
    ]) {
      assert.equal(mode(join(env.config.stateDir, file)), 0o600, file);
    }
    assert.equal(mode(env.config.stateDir), 0o700);
  });

  it("logs hold no secrets", () => {
    const text = env.logs.text();
    assert.ok(text.includes("enrolled"));
    assert.ok(!text.includes(server.bootstrapToken), "bootstrap token logged");
    assert.ok(!text.includes(server.bootstrapToken.slice(4)), "bootstrap token logged");
    assert.ok(!text.includes(SECRET_VALUE), "secret value logged");
    const keyring = JSON.parse(
      readFileSync(join(env.config.stateDir, "wireguard-keys.json"), "utf8"),
    ) as { peers: Record<string, { current: { private_key: string } }> };
    assert.ok(!text.includes(keyring.peers[WG_ID]?.current.private_key as string));
    assert.ok(!text.includes("PRIVATE KEY"));
  });

  it("restart skips unchanged installs", async () => {
    const before = statSync(env.wgPath).mtimeMs;
    const requestCount = server.requests.length;
    const appliedCount = server.applied.length;
    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), true, env.logs.text());
    } finally {
      agent.close();
    }
    const requests = server.requests.slice(requestCount);
    assert.ok(!requests.some((request) => request.path === "/v1/devices/enroll"));
    const state = requests.find((request) => request.path === "/v1/devices/self/state");
    assert.equal(state?.query.get("since"), server.etag());
    assert.equal(state?.status, 304);
    assert.equal(server.applied.length, appliedCount);
    assert.equal(statSync(env.wgPath).mtimeMs, before);
  });

  it("long poll picks up a change", async () => {
    const agent = env.agent();
    await agent.open();
    const controller = new AbortController();
    const running = agent.run(controller.signal);
    try {
      await eventually("a waiting long poll", 10_000, () =>
        server.requests.some(
          (request) =>
            request.path === "/v1/devices/self/state" &&
            request.query.get("wait") === "5" &&
            request.status === 0,
        ),
      );
      server.secrets = [{ name: "radius", version: 2, value: "bmV3IHZhbHVl" }];
      server.changed();
      await eventually("version 2 to be reported", 10_000, () =>
        server.applied.some((item) => item.id === "secret:radius" && item.version === 2),
      );
      assert.equal(readFileSync(env.secretPath, "utf8"), "bmV3IHZhbHVl\n");
    } finally {
      controller.abort();
      await running;
      agent.close();
    }
    assert.ok(env.logs.messages().includes("agent stopped"));
  });

  it("rotation installs next at activation", async () => {
    const agent = env.agent();
    await agent.open();
    const controller = new AbortController();
    const running = agent.run(controller.signal);
    const peer = server.peers[0] as FakePeer;
    const oldKey = peer.publicKey;
    const registered = server.registeredKeys.length;
    try {
      peer.rotateKey = true;
      peer.configVersion += 1;
      server.changed();
      await eventually("a staged key", 10_000, () => server.registeredKeys.length > registered);
      const newKey = server.registeredKeys.at(-1) as string;
      assert.notEqual(newKey, oldKey);
      // Saved before it was sent: the keyring contains the old key and the staged one.
      const staged = readKeyring(env.dir).peers[WG_ID];
      assert.equal(staged?.current?.public_key, oldKey);
      assert.equal(staged?.staged?.public_key, newKey);
      const nextVersion = peer.configVersion + 1;

      await eventually("the next configuration to be installed", 15_000, () => {
        try {
          return installedPublicKey(env.wgPath) === newKey;
        } catch {
          return false;
        }
      });
      await eventually("the next version to be reported", 10_000, () =>
        server.applied.some((item) => item.id === WG_ID && item.version === nextVersion),
      );
      await eventually("the old key to be dropped", 10_000, () => {
        const keys = readKeyring(env.dir).peers[WG_ID];
        return keys?.current?.public_key === newKey && keys.staged === undefined;
      });
      assert.ok(
        !readFileSync(join(env.config.stateDir, "wireguard-keys.json"), "utf8").includes(
          String(oldKey),
        ),
      );
    } finally {
      controller.abort();
      await running;
      agent.close();
    }
  });

  it("renews a due certificate", async () => {
    const keyBefore = readFileSync(join(env.config.stateDir, "identity-key.pem"), "utf8");
    const serialsBefore = server.validSerials;
    const state = JSON.parse(readFileSync(join(env.config.stateDir, "state.json"), "utf8"));
    state.enrollment.renew_after = Math.floor(Date.now() / 1000) - 1;
    writeFileSync(join(env.config.stateDir, "state.json"), JSON.stringify(state));
    const requestCount = server.requests.length;

    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), true, env.logs.text());
    } finally {
      agent.close();
    }
    const requests = server.requests.slice(requestCount);
    const renewal = requests.find((request) => request.path === "/v1/devices/self/renew");
    assert.ok(renewal, "no renewal request");
    assert.ok(
      serialsBefore.includes(renewal.clientSerial ?? ""),
      "renewed with the old certificate",
    );
    const keyAfter = readFileSync(join(env.config.stateDir, "identity-key.pem"), "utf8");
    assert.notEqual(keyAfter, keyBefore);
    assert.equal(mode(join(env.config.stateDir, "identity-key.pem")), 0o600);
    const later = requests.filter((request) => request.path === "/v1/devices/self/state");
    const newSerial = server.validSerials.find((serial) => !serialsBefore.includes(serial));
    assert.ok(newSerial);
    assert.ok(later.every((request) => request.clientSerial === newSerial));
    const saved = JSON.parse(readFileSync(join(env.config.stateDir, "state.json"), "utf8"));
    assert.equal(saved.enrollment.serial_number, newSerial);
    assert.ok(saved.enrollment.renew_after > Date.now() / 1000);
  });
});

describe("agent failure handling", () => {
  it("backs off on 5xx with jitter", async () => {
    const server = new FakeDeviceServer("gw-2");
    await server.start();
    server.secrets = [{ name: "radius", version: 1, value: SECRET_VALUE }];
    const env = setup(server, {
      artifacts: [{ kind: "secret", name: "radius", path: join("etc", "radius") }],
    });
    server.failStateRequests = 3;

    const agent = env.agent(() => 0);
    await agent.open();
    const controller = new AbortController();
    const running = agent.run(controller.signal);
    try {
      await eventually("a report after the failures", 30_000, () => server.applied.length > 0);
    } finally {
      controller.abort();
      await running;
      agent.close();
      await server.stop();
    }

    const retries = env.logs.lines.filter((line) => line.msg === "retrying after a failed round");
    assert.deepEqual(
      retries.map((line) => [line.attempt, line.retry_in_ms]),
      [
        [1, 1000],
        [2, 1000],
        [3, 1000],
      ],
    );

    const failures = env.logs.lines.filter((line) => line.msg === "round failed");
    assert.equal(failures.length, 1, "a repeated failure is logged once");
    assert.match(String(failures[0]?.reason), /HTTP 503/);
    assert.ok(env.logs.messages().includes("the server is reachable again"));
  });

  it("activates from saved state offline", async () => {
    const server = new FakeDeviceServer("gw-3");
    await server.start();
    const peer = newPeer({ rotationNoticeMs: 3000 });
    server.peers = [peer];
    const env = setup(server, {
      artifacts: [
        {
          kind: "wireguard",
          mount: "wireguard",
          network: "office",
          peer: "alpha",
          path: "wg.conf",
        },
      ],
    });
    const wgPath = join(env.dir, "wg.conf");

    const agent = env.agent(() => 0);
    await agent.open();
    const controller = new AbortController();
    const running = agent.run(controller.signal);
    try {
      await eventually("the first install", 10_000, () => server.applied.length > 0);

      peer.rotateKey = true;
      peer.configVersion += 1;
      server.changed();
      await eventually("a saved next configuration", 10_000, () => {
        const saved = JSON.parse(readFileSync(join(env.config.stateDir, "state.json"), "utf8"));
        return saved.last_state?.artifacts?.[0]?.next !== null;
      });

      // The staged key activates 3 s after registration; the server is gone by then.
      const newKey = server.registeredKeys.at(-1);
      await server.stop();
      await eventually("the next configuration without the server", 15_000, () => {
        try {
          return installedPublicKey(wgPath) === newKey;
        } catch {
          return false;
        }
      });
    } finally {
      controller.abort();
      await running;
      agent.close();
    }
    assert.ok(env.logs.messages().includes("round failed"));
  });

  it("failed reload logs file installed", async () => {
    const server = new FakeDeviceServer("gw-6");
    await server.start();
    server.secrets = [{ name: "radius", version: 1, value: SECRET_VALUE }];
    const env = setup(server, {
      artifacts: [{ kind: "secret", name: "radius", path: "radius", reload: "exit 3" }],
    });
    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), false);
    } finally {
      agent.close();
      await server.stop();
    }
    assert.equal(readFileSync(join(env.dir, "radius"), "utf8"), SECRET_VALUE);
    assert.ok(!env.logs.messages().includes("artifact not installed"));
    const failure = env.logs.lines.find((line) => String(line.msg).includes("reload"));
    assert.ok(failure, "no reload failure logged");
    assert.equal(
      failure.msg,
      "installed artifact, but its reload command failed and is retried next round",
    );
    assert.equal(failure.version, 1);
    assert.match(String(failure.reason), /the reload command exited with status 3/);
  });

  it("revoked device waits for a new token", async () => {
    const server = new FakeDeviceServer("gw-4");
    await server.start();
    server.secrets = [{ name: "radius", version: 1, value: SECRET_VALUE }];
    const dir = mkdtempSync(join(tmpdir(), "keyward-agent-loop-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${server.bootstrapToken}\n`, { mode: 0o600 });
    const env = setup(
      server,
      {
        bootstrap_token: undefined,
        bootstrap_token_file: "token",
        artifacts: [{ kind: "secret", name: "radius", path: "radius" }],
      },
      dir,
    );
    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), true, env.logs.text());
      server.revoke();
      const enrolments = () =>
        server.requests.filter((request) => request.path === "/v1/devices/enroll").length;
      assert.equal(await agent.runOnce(), false);
      assert.equal(enrolments(), 1, "the used token was sent again");
      const advice = env.logs.lines.find(
        (line) => line.msg === "cannot enrol again without a new bootstrap token",
      );
      assert.ok(advice, "no advice logged");
      assert.match(String(advice.reason), /Configure a new bootstrap token/);
      assert.match(String(advice.reason), /revoked, an operator must first delete it and register/);

      writeFileSync(tokenFile, `${server.newBootstrapToken()}\n`);
      assert.equal(await agent.runOnce(), true, env.logs.text());
      assert.equal(enrolments(), 2);
      assert.ok(!env.logs.text().includes(server.bootstrapToken.slice(4)));
    } finally {
      agent.close();
      await server.stop();
    }
  });

  it("bad token fails once mode", async () => {
    const server = new FakeDeviceServer("gw-5");
    await server.start();
    const env = setup(server, { bootstrap_token: `kwb.${"x".repeat(43)}` });
    const agent = env.agent();
    await agent.open();
    try {
      assert.equal(await agent.runOnce(), false);
    } finally {
      agent.close();
      await server.stop();
    }
    const failure = env.logs.lines.find((line) => line.msg === "round failed");
    assert.match(String(failure?.reason), /HTTP 403: unknown bootstrap token/);
    assert.ok(!env.logs.text().includes("x".repeat(43)));
  });
});
