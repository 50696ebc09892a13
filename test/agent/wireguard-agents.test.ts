import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { hasProgram, requirePeer } from "../helpers/peers.ts";
import { cliCommand, REPO_ROOT } from "../helpers/server-process.ts";
import { httpsJson } from "./https-client.ts";
import { AgentLab } from "./lab.ts";
import { makeServerTls, type ServerTls } from "./server-tls.ts";

const PROGRAMS = ["wg", "wireguard-go", "ip", "ping", "openssl"];
const isRoot = process.getuid?.() === 0;
const PEERS = ["alpha", "bravo"] as const;
const WG_PORT = 51_820;

function requirePeers(t: TestContext): boolean {
  for (const program of PROGRAMS) if (!requirePeer(t, program)) return false;
  if (!isRoot) {
    t.skip("network namespaces need root");
    return false;
  }
  return true;
}

/** A process started inside a namespace, with its output kept for failure messages. */
interface Spawned {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function spawnInNamespace(namespace: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(
    "ip",
    ["netns", "exec", namespace, process.execPath, ...cliCommand(), ...args],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Polls `check` every 250 ms until it returns a value other than undefined, or fails after `ms`. */
async function eventually<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Two Keyward agents in two network namespaces enrol with bootstrap tokens,
 * make their own WireGuard keys and maintain the configuration Keyward
 * renders for them. wireguard-go carries a ping between the namespaces,
 * again after a scheduled rotation, and no longer once one device is
 * revoked.
 */
describe("agents keep a WireGuard tunnel between namespaces", () => {
  const ready = PROGRAMS.every(hasProgram) && isRoot;
  const lab = new AgentLab(`kwa${process.pid % 100_000}`);
  const work = mkdtempSync(join(tmpdir(), "keyward-agents-"));
  let tls: ServerTls;
  let ca: Buffer;
  let server: Spawned;
  let base = "";
  let rootToken = "";
  const agents: Spawned[] = [];
  const tunnelAddresses: string[] = [];

  const admin = (method: string, path: string, body?: unknown) =>
    httpsJson(base, ca, method, path, { token: rootToken, body });
  async function ok(method: string, path: string, body?: unknown) {
    const response = await admin(method, path, body);
    assert.ok(
      response.status < 300,
      `${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`,
    );
    return response.body?.data ?? response.body;
  }
  const peer = (name: string) => ok("GET", `/v1/wireguard/networks/lab/peers/${name}`);

  before(async () => {
    if (!ready) return;
    await lab.create();
    tls = makeServerTls(lab.serverAddresses);
    ca = readFileSync(tls.caFile);
    server = spawnInNamespace(
      lab.server,
      [
        "server",
        "--dev",
        "--listen",
        "0.0.0.0:0",
        "--data-dir",
        join(work, "server"),
        "--log-level",
        "warn",
      ],
      {
        KEYWARD_TLS_CERT_FILE: tls.certFile,
        KEYWARD_TLS_KEY_FILE: tls.keyFile,
        KEYWARD_JOB_INTERVAL_MS: "500",
      },
    );
    const started = await eventually("the server to start", 60_000, async () => {
      const text = server.output();
      const port = /Address:\s+\S+:(\d+)/.exec(text)?.[1];
      const token = /Root token:\s+(\S+)/.exec(text)?.[1];
      if (server.child.exitCode !== null) throw new Error(`server exited:\n${text}`);
      return port && token ? { port, token } : undefined;
    });
    base = `https://${lab.serverAddressFromHost}:${started.port}`;
    rootToken = started.token;

    await ok("POST", "/v1/sys/mounts/pki", { type: "pki" });
    await ok("POST", "/v1/pki/root/generate/internal", {
      common_name: "Lab device CA",
      key_type: "ec",
      ttl: "24h",
    });
    await ok("POST", "/v1/pki/roles/device", {
      allow_any_name: true,
      enforce_hostnames: false,
      server_flag: false,
      client_flag: true,
      key_type: "any",
      ttl: "1h",
    });
    await ok("POST", "/v1/devices/config", { pki_mount: "pki", pki_role: "device" });
    await ok("POST", "/v1/sys/mounts/wireguard", { type: "wireguard" });
    await ok("POST", "/v1/wireguard/networks/lab", {
      address_ranges: "198.19.77.0/24",
      listen_port: WG_PORT,
      rotation_notice: "2s",
    });

    for (const [index, name] of PEERS.entries()) {
      const endpoint = lab.endpoints[index as 0 | 1];
      await ok("POST", `/v1/devices/registry/${name}`, { groups: ["lab"] });
      const created = await ok("POST", `/v1/wireguard/networks/lab/peers/${name}`, {
        device_id: name,
        endpoint: `${endpoint.underlay}:${WG_PORT}`,
      });
      tunnelAddresses.push(created.addresses[0]);
      lab.addressTunnel(index as 0 | 1, [`${created.addresses[0]}/24`]);
      const bootstrap = await ok("POST", `/v1/devices/registry/${name}/bootstrap-token`, {
        ttl: "10m",
      });
      const folder = join(work, name);
      spawnSync("mkdir", ["-p", folder]);
      const wgFile = join(folder, "wg.conf");
      const config = {
        server: `https://${endpoint.serverAddress}:${started.port}`,
        ca_file: tls.caFile,
        device: name,
        bootstrap_token: bootstrap.bootstrap_token,
        state_dir: join(folder, "state"),
        poll_wait: "20s",
        artifacts: [
          {
            kind: "wireguard",
            mount: "wireguard",
            network: "lab",
            peer: name,
            format: "wg",
            path: wgFile,
            mode: "0600",
            reload: `wg setconf ${endpoint.wgInterface} ${wgFile}`,
          },
        ],
      };
      writeFileSync(join(folder, "agent.json"), JSON.stringify(config, null, 2));
      agents.push(
        spawnInNamespace(endpoint.namespace, ["agent", "--config", join(folder, "agent.json")], {}),
      );
    }
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await server?.stop();
    lab.destroy();
  });

  /** Waits until both interfaces run the keys Keyward stores and list each other. */
  async function converged(what: string): Promise<[string, string]> {
    return eventually<[string, string]>(what, 60_000, async () => {
      const keys = await Promise.all(
        PEERS.map(async (name) => (await peer(name)).public_key as string | null),
      );
      const [alpha, bravo] = keys;
      if (!alpha || !bravo) return undefined;
      if (lab.publicKey(0) !== alpha || lab.publicKey(1) !== bravo) return undefined;
      if (lab.peerKeys(0).join() !== bravo || lab.peerKeys(1).join() !== alpha) return undefined;
      return [alpha, bravo];
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${agents.map((agent) => agent.output()).join("\n")}`);
    });
  }

  it("enrols both agents and pings across the tunnel", async (t) => {
    if (!requirePeers(t)) return;
    await converged("both agents to install their first configuration");
    assert.ok(lab.ping(0, tunnelAddresses[1] as string), "alpha cannot reach bravo");
    assert.ok(lab.ping(1, tunnelAddresses[0] as string), "bravo cannot reach alpha");
    const rollout = await ok("GET", "/v1/devices/rollout");
    for (const artifact of rollout.artifacts)
      assert.equal(artifact.complete, true, JSON.stringify(artifact));
  });

  it("keeps the tunnel after a scheduled rotation", async (t) => {
    if (!requirePeers(t)) return;
    const before = await Promise.all(PEERS.map(peer));
    await ok("POST", "/v1/wireguard/networks/lab", { rotation_period: "1s" });
    await eventually("both peers to rotate", 60_000, async () => {
      const now = await Promise.all(PEERS.map(peer));
      return now.every((record, index) => record.key_version > (before[index]?.key_version ?? 0))
        ? true
        : undefined;
    });
    await ok("POST", "/v1/wireguard/networks/lab", { rotation_period: 0 });
    const [alpha, bravo] = await converged("both agents to install the rotated keys");
    assert.notEqual(alpha, before[0]?.public_key);
    assert.notEqual(bravo, before[1]?.public_key);
    for (const [index, name] of PEERS.entries()) {
      const keyring = JSON.parse(
        readFileSync(join(work, name, "state", "wireguard-keys.json"), "utf8"),
      ) as { peers: Record<string, Record<string, { private_key: string } | undefined>> };
      // The agent may not have promoted its staged key to current yet, so both are derived.
      const held = Object.values(keyring.peers[`wireguard:wireguard:lab:${name}`] ?? {});
      const derived = held.map((key) =>
        spawnSync("wg", ["pubkey"], {
          input: `${key?.private_key}\n`,
          encoding: "utf8",
        }).stdout.trim(),
      );
      assert.ok(
        derived.includes([alpha, bravo][index] as string),
        `wg pubkey disagrees for ${name}`,
      );
    }
    assert.ok(lab.ping(0, tunnelAddresses[1] as string), "alpha cannot reach bravo after rotation");
    assert.ok(lab.ping(1, tunnelAddresses[0] as string), "bravo cannot reach alpha after rotation");
  });

  it("cuts a revoked device off", async (t) => {
    if (!requirePeers(t)) return;
    await ok("POST", "/v1/devices/registry/bravo/revoke");
    await eventually("alpha to drop bravo", 60_000, async () =>
      lab.peerKeys(0).length === 0 ? true : undefined,
    );
    assert.equal(lab.ping(0, tunnelAddresses[1] as string, 1), false);
    assert.equal(lab.ping(1, tunnelAddresses[0] as string, 1), false);
  });
});
