import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEV_UNSEAL_KEY_FILE } from "../../src/core/dev-mode.ts";
import { type PostgresServer, startPostgres } from "../helpers/postgres.ts";
import { type ServerProcess, startDevServer } from "../helpers/server-process.ts";

export const ROOT_TOKEN = "cluster-test-root-token";

/** Several dev-mode nodes on one PostgreSQL database, each with its own data directory and node id. */
export class TestCluster {
  readonly nodes = new Map<string, ServerProcess>();
  readonly #url: string;
  readonly #root = mkdtempSync(join(tmpdir(), "keyward-cluster-"));
  readonly #extraArgs: string[];

  constructor(url: string, extraArgs: string[] = []) {
    this.#url = url;
    this.#extraArgs = extraArgs;
  }

  /**
   * Starts node `nodeId`. The first node initialises the installation; the
   * others get a copy of its dev unseal key, so each unseals itself.
   */
  async start(nodeId: string): Promise<ServerProcess> {
    const dataDir = join(this.#root, nodeId);
    const first = [...this.nodes.values()][0];
    if (first !== undefined) {
      const { mkdirSync } = await import("node:fs");
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      copyFileSync(join(first.dataDir, DEV_UNSEAL_KEY_FILE), join(dataDir, DEV_UNSEAL_KEY_FILE));
    }
    const server = await startDevServer({
      dataDir,
      args: [
        "--dev-root-token",
        ROOT_TOKEN,
        "--storage",
        this.#url,
        "--node-id",
        nodeId,
        ...this.#extraArgs,
      ],
    });
    this.nodes.set(nodeId, server);
    return server;
  }

  node(nodeId: string): ServerProcess {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new Error(`no node ${nodeId}`);
    return node;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.stop()));
    rmSync(this.#root, { recursive: true, force: true });
  }
}

/** Sends one API request with the root token and returns the status and parsed body. */
export async function call(
  node: ServerProcess,
  method: string,
  path: string,
  body?: unknown,
  token = ROOT_TOKEN,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.address}/v1/${path}`, {
    method,
    headers: {
      "x-vault-token": token,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : JSON.parse(text) };
}

/** Polls `check` every 20 ms until it returns true or `limitMs` passes; returns the milliseconds it took, or undefined. */
export async function timeUntil(
  check: () => Promise<boolean>,
  limitMs: number,
): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started <= limitMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** Two dev-mode nodes on one PostgreSQL that the test started, for requests raced across nodes. */
export interface TwoNodes {
  postgres: PostgresServer;
  cluster: TestCluster;
  nodes: [ServerProcess, ServerProcess];
  /** Stops both nodes, then PostgreSQL. */
  stop(): Promise<void>;
}

/** Starts PostgreSQL and the nodes `node-a` and `node-b` on it. */
export async function startTwoNodes(): Promise<TwoNodes> {
  const postgres = await startPostgres();
  const cluster = new TestCluster(postgres.url);
  try {
    const nodes: [ServerProcess, ServerProcess] = [
      await cluster.start("node-a"),
      await cluster.start("node-b"),
    ];
    return {
      postgres,
      cluster,
      nodes,
      async stop() {
        await cluster.stop();
        await postgres.stop();
      },
    };
  } catch (error) {
    await cluster.stop();
    await postgres.stop();
    throw error;
  }
}

/**
 * Mounts the PKI engine at `pki` through the first node and waits up to
 * `limitMs` until the second serves it; throws when it does not.
 */
export async function mountPkiOnBoth(
  nodes: readonly ServerProcess[],
  limitMs: number,
  config?: Record<string, unknown>,
): Promise<void> {
  const mounted = await call(nodes[0]!, "POST", "sys/mounts/pki", {
    type: "pki",
    ...(config === undefined ? {} : { config }),
  });
  if (mounted.status !== 204) {
    throw new Error(`mounting pki failed: ${mounted.status} ${JSON.stringify(mounted.body)}`);
  }
  const served = await timeUntil(
    async () => (await call(nodes[1]!, "GET", "pki/config/issuers")).status === 200,
    limitMs,
  );
  if (served === undefined) throw new Error(`${nodes[1]!.address} did not serve the new PKI mount`);
}
