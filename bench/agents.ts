import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { DeviceClient } from "../src/agent/client.ts";
import { buildCsr, encryptionJwk, generateP256Key } from "../src/agent/identity.ts";
import { openSealed } from "../src/devices/sealed.ts";
import { generateKeyPair } from "../src/engines/wireguard/index.ts";
import { makeServerTls } from "../test/agent/server-tls.ts";
import { exited, ROOT_TOKEN, startDevServer, startProcess } from "./dev-server.ts";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "10,100,1000" },
    rounds: { type: "string", default: "3" },
    /** Folder for a CPU profile of the Keyward server (`node --cpu-prof`). */
    profile: { type: "string" },
  },
});
const counts = values.agents.split(",").map(Number);
const rounds = Number(values.rounds);
if (counts.some((count) => !Number.isInteger(count) || count < 1 || count > 5000)) {
  throw new Error("--agents must list integers from 1 to 5000");
}
const WAIT_SECONDS = 30;

// TLS material for both servers: a throwaway CA and a certificate for 127.0.0.1.
const tls = makeServerTls(["127.0.0.1"]);
const tlsDir = tls.dir;
const ca = readFileSync(tls.caFile);
const certFile = tls.certFile;
const keyFile = tls.keyFile;

const adminAgent = new Agent({ keepAlive: true, ca });

/** Sends one JSON request with the root token and returns the `data` of the response. */
// biome-ignore lint/suspicious/noExplicitAny: the benchmark reads a few known fields of each response
function admin(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      new URL(path, base),
      {
        method,
        agent: adminAgent,
        headers: {
          "x-vault-token": ROOT_TOKEN,
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => {
          const parsed = text === "" ? undefined : JSON.parse(text);
          if ((response.statusCode ?? 500) >= 300) {
            reject(new Error(`${method} ${path}: ${response.statusCode} ${text}`));
          } else resolve(parsed?.data ?? parsed);
        });
      },
    );
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kib * 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** An enrolled device: its client (mutual TLS) and its encryption key. */
interface Device {
  name: string;
  client: DeviceClient;
  encryptionKey: KeyObject;
}

/** Returns the public key of the hub, the only peer a spoke's configuration lists. */
function listedKey(config: string): string | undefined {
  return /PublicKey = (\S+)/.exec(config)?.[1];
}

/**
 * A simulated agent: long-polls its state, opens the sealed configuration,
 * reports it applied and records when each hub key was first applied.
 */
class SimulatedAgent {
  etag: string | undefined;
  readonly appliedAt = new Map<string, number>();
  readonly #device: Device;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;

  constructor(device: Device) {
    this.#device = device;
  }

  start(): void {
    this.#running = this.#loop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #loop(): Promise<void> {
    const { client, encryptionKey } = this.#device;
    while (!this.#abort.signal.aborted) {
      try {
        const query = this.etag === undefined ? "" : `?since=${this.etag}&wait=${WAIT_SECONDS}`;
        const response = await client.request("GET", `/v1/devices/self/state${query}`, {
          allowStatus: [304],
          timeoutMs: (WAIT_SECONDS + 15) * 1000,
          signal: this.#abort.signal,
        });
        if (response.status === 304) continue;
        const state = response.body as {
          etag: string;
          artifacts: { id: string; kind: string; version: number; secrets: { wg: string } }[];
        };
        const applied: { id: string; version: number }[] = [];
        let key: string | undefined;
        for (const artifact of state.artifacts) {
          if (artifact.kind !== "wireguard") continue;
          const config = await openSealed(encryptionKey, artifact.secrets.wg, {
            artifact: artifact.id,
            version: artifact.version,
            field: "wg",
          });
          key = listedKey(config);
          applied.push({ id: artifact.id, version: artifact.version });
        }
        await client.request("POST", "/v1/devices/self/applied", {
          body: { artifacts: applied },
          allowStatus: [204],
          signal: this.#abort.signal,
        });
        if (key !== undefined && !this.appliedAt.has(key))
          this.appliedAt.set(key, performance.now());
        this.etag = state.etag;
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        console.error(`agent ${this.#device.name}: ${(error as Error).message}`);
        await sleep(500);
      }
    }
  }
}

/** Waits until `done()` returns true, checking every 50 ms, for at most `ms`. */
async function until(what: string, ms: number, done: () => boolean): Promise<void> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Result {
  agents: number;
  keywardMs: number[];
  baselineMs: number[];
  bytesPerAgent: number;
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function runKeyward(): Promise<Map<number, { ms: number[]; bytesPerAgent: number }>> {
  const server = await startDevServer(values.profile, {
    KEYWARD_TLS_CERT_FILE: certFile,
    KEYWARD_TLS_KEY_FILE: keyFile,
  });
  const base = server.url;
  const results = new Map<number, { ms: number[]; bytesPerAgent: number }>();
  const devices: Device[] = [];
  try {
    await admin(base, "POST", "/v1/sys/mounts/pki", { type: "pki" });
    await admin(base, "POST", "/v1/pki/root/generate/internal", {
      common_name: "bench device CA",
      key_type: "ec",
      ttl: "24h",
    });
    await admin(base, "POST", "/v1/pki/roles/device", {
      allow_any_name: true,
      enforce_hostnames: false,
      server_flag: false,
      client_flag: true,
      key_type: "any",
      ttl: "4h",
    });
    await admin(base, "POST", "/v1/devices/config", { pki_mount: "pki", pki_role: "device" });
    await admin(base, "POST", "/v1/sys/mounts/wireguard", { type: "wireguard" });
    await admin(base, "POST", "/v1/wireguard/networks/bench", {
      address_ranges: "10.200.0.0/16",
      topology: "hub-and-spoke",
      hub: "hub",
    });
    await admin(base, "POST", "/v1/wireguard/networks/bench/peers/hub", {
      generate_key: true,
      endpoint: "192.0.2.1:51820",
    });

    const enrol = async (index: number) => {
      const name = `spoke-${String(index).padStart(5, "0")}`;
      await admin(base, "POST", `/v1/devices/registry/${name}`, { groups: ["bench"] });
      const bootstrap = await admin(
        base,
        "POST",
        `/v1/devices/registry/${name}/bootstrap-token`,
        {},
      );
      const identityKey = generateP256Key();
      const encryptionKey = createPrivateKey(generateP256Key());
      const client = new DeviceClient(new URL(base), ca);
      const enrolled = (
        await client.request("POST", "/v1/devices/enroll", {
          clientCertificate: false,
          body: {
            bootstrap_token: bootstrap.bootstrap_token,
            csr: await buildCsr(name, identityKey),
            encryption_key: encryptionJwk(encryptionKey),
          },
        })
      ).body as { certificate: string; ca_chain: string[] };
      client.setIdentity({
        certificateChain: [enrolled.certificate, ...enrolled.ca_chain].join("\n"),
        privateKey: identityKey,
      });
      await admin(base, "POST", `/v1/wireguard/networks/bench/peers/${name}`, {
        public_key: generateKeyPair().publicKey,
        device_id: name,
      });
      devices[index] = { name, client, encryptionKey };
    };

    for (const count of counts) {
      const missing = Array.from({ length: count }, (_, index) => index).filter(
        (index) => !devices[index],
      );
      await pool(missing, 8, enrol);
      const pid = server.child.pid as number;
      await sleep(2000);
      const before = residentBytes(pid);
      const agents = devices.slice(0, count).map((device) => new SimulatedAgent(device as Device));
      for (const agent of agents) agent.start();
      await until("every agent's first state", 300_000, () =>
        agents.every((agent) => agent.etag !== undefined),
      );
      await sleep(2000);
      const after = residentBytes(pid);
      const ms: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const started = performance.now();
        const rotated = await admin(base, "POST", "/v1/wireguard/networks/bench/peers/hub/rotate", {
          generate_key: true,
        });
        const key = rotated.peer?.public_key ?? rotated.public_key;
        await until("every agent to apply the rotation", 300_000, () =>
          agents.every((agent) => agent.appliedAt.has(key)),
        );
        ms.push(Math.max(...agents.map((agent) => agent.appliedAt.get(key) as number)) - started);
        await sleep(500);
      }
      await Promise.all(agents.map((agent) => agent.stop()));
      results.set(count, { ms, bytesPerAgent: (after - before) / count });
    }
  } finally {
    for (const device of devices) device?.client.close();
    await server.stop();
  }
  return results;
}

/** The baseline's client: the same long poll and report, with no decryption. */
class BaselineClient {
  version = "";
  appliedVersion = 0;
  appliedAt = new Map<number, number>();
  readonly #client: DeviceClient;
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;

  constructor(client: DeviceClient) {
    this.#client = client;
  }

  start(): void {
    this.#running = this.#loop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #loop(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        const response = await this.#client.request(
          "GET",
          `/state?since=${this.version}&wait=${WAIT_SECONDS}`,
          {
            allowStatus: [304],
            timeoutMs: (WAIT_SECONDS + 15) * 1000,
            signal: this.#abort.signal,
          },
        );
        if (response.status === 304) continue;
        const state = response.body as { etag: string; artifacts: { version: number }[] };
        const version = state.artifacts[0]?.version ?? 0;
        await this.#client.request("POST", "/applied", {
          body: { artifacts: [{ id: "baseline", version }] },
          allowStatus: [204],
          signal: this.#abort.signal,
        });
        this.appliedAt.set(version, performance.now());
        this.version = state.etag;
      } catch {
        if (this.#abort.signal.aborted) return;
        await sleep(500);
      }
    }
  }
}

async function runBaseline(): Promise<Map<number, number[]>> {
  const started = await startProcess(
    process.execPath,
    ["bench/agents-baseline-server.mjs"],
    /listening on (\d+)/,
    { BASELINE_CERT_FILE: certFile, BASELINE_KEY_FILE: keyFile },
  );
  const base = `https://127.0.0.1:${started.match}`;
  const results = new Map<number, number[]>();
  const identity = {
    certificateChain: readFileSync(certFile, "utf8"),
    privateKey: readFileSync(keyFile, "utf8"),
  };
  try {
    for (const count of counts) {
      const clients = Array.from({ length: count }, () => {
        const client = new DeviceClient(new URL(base), ca);
        client.setIdentity(identity);
        return new BaselineClient(client);
      });
      for (const client of clients) client.start();
      await until("every baseline client's first state", 300_000, () =>
        clients.every((client) => client.version !== ""),
      );
      await sleep(1000);
      const ms: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const began = performance.now();
        const bumped = (await admin(base, "POST", "/bump")) as { version: number };
        await until("every baseline client", 300_000, () =>
          clients.every((client) => client.appliedAt.has(bumped.version)),
        );
        ms.push(
          Math.max(...clients.map((client) => client.appliedAt.get(bumped.version) as number)) -
            began,
        );
        await sleep(500);
      }
      await Promise.all(clients.map((client) => client.stop()));
      results.set(count, ms);
    }
  } finally {
    started.child.kill("SIGTERM");
    await exited(started.child);
  }
  return results;
}

try {
  const keyward = await runKeyward();
  const baseline = await runBaseline();
  const results: Result[] = counts.map((count) => ({
    agents: count,
    keywardMs: keyward.get(count)?.ms ?? [],
    baselineMs: baseline.get(count) ?? [],
    bytesPerAgent: keyward.get(count)?.bytesPerAgent ?? NaN,
  }));
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
  );
  console.log("agents  keyward ms (median)  baseline ms (median)  ratio  server KiB per agent");
  for (const result of results) {
    const keywardMedian = median(result.keywardMs);
    const baselineMedian = median(result.baselineMs);
    console.log(
      [
        String(result.agents).padStart(6),
        `${keywardMedian.toFixed(0)} (${result.keywardMs.map((ms) => ms.toFixed(0)).join(", ")})`.padStart(
          20,
        ),
        `${baselineMedian.toFixed(0)} (${result.baselineMs.map((ms) => ms.toFixed(0)).join(", ")})`.padStart(
          21,
        ),
        (keywardMedian / baselineMedian).toFixed(1).padStart(6),
        (result.bytesPerAgent / 1024).toFixed(0).padStart(21),
      ].join("  "),
    );
  }
} finally {
  adminAgent.destroy();
  rmSync(tlsDir, { recursive: true, force: true });
}
