/**
 * Transit encrypt and PKI sign on one, two and three Keyward nodes sharing
 * one PostgreSQL database, beside a single node on SQLite, in one run.
 *
 * Starts Keyward dev servers from dist/ (run `npm run build` first). The
 * SQLite node runs alone first. Then a private PostgreSQL server starts
 * through test/helpers/postgres.ts, from /usr/lib/postgresql with fsync
 * on (or the server at `KEYWARD_TEST_POSTGRES_URL`). Nodes join its
 * database one at a time, and after each join the same load runs again,
 * spread evenly over every node. autocannon loads each node with
 * its share of the connections at the same time, and the table shows the
 * sum of requests per second over the nodes, the highest p99 latency of
 * any node, and the ratios to the single SQLite node and to one node on
 * PostgreSQL.
 *
 * Keyward runs as an operator would run it: requests carry a non-root
 * token whose policy grants only the benchmarked paths, and the built-in
 * `store` audit device records every request and response (on PostgreSQL
 * each audit batch is a committed transaction, synced to disk).
 *
 * Needs `openssl` on PATH for the CSR.
 *
 * Usage: npx tsx bench/cluster.ts [--duration SECONDS] [--connections N] [--nodes N]
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEV_UNSEAL_KEY_FILE } from "../src/core/dev-mode.ts";
import { startPostgres } from "../test/helpers/postgres.ts";
import {
  createScopedToken,
  exited,
  type LoadResult,
  load,
  mountPkiWithRoot,
  post,
  ROOT_TOKEN,
  type RunningServer,
  startDevServer,
  startProcess,
} from "./dev-server.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    nodes: { type: "string", default: "3" },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const maxNodes = Number(values.nodes);

/** Seconds of load on each node arrangement before each measured case, discarded. */
const WARM_UP_SECONDS = 1;
const COMMON_NAME = "bench.example.com";
const PLAINTEXT = Buffer.alloc(64, 7).toString("base64");
const TRANSIT_KEY = "bench-aes";

/** The benchmark's requests, as paths under `/v1/` and JSON bodies. */
interface Workload {
  token: string;
  encrypt: [string, unknown];
  sign: [string, unknown];
}

/** One measured arrangement: its name and the figures of each operation. */
interface Row {
  name: string;
  encrypt: LoadResult;
  sign: LoadResult;
}

/** Writes a P-256 CSR for COMMON_NAME with openssl and returns it in PEM. */
function makeCsr(dir: string): string {
  const csrFile = join(dir, "csr.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${COMMON_NAME}`,
      "-keyout",
      join(dir, "csr-key.pem"),
      "-out",
      csrFile,
    ],
    { stdio: "ignore" },
  );
  return readFileSync(csrFile, "utf8");
}

/** Creates the transit key, the PKI mount, root and role, and the scoped token, through `server`. */
async function prepare(server: RunningServer, csr: string): Promise<Workload> {
  await post(`${server.url}/v1/transit/keys/${TRANSIT_KEY}`, { type: "aes256-gcm96" }, ROOT_TOKEN);
  const pki = await mountPkiWithRoot(server);
  await post(
    `${pki}/roles/bench`,
    {
      allowed_domains: ["example.com"],
      allow_subdomains: true,
      key_type: "ec",
      key_bits: 256,
      ttl: "168h",
    },
    ROOT_TOKEN,
  );
  const encryptPath = `transit/encrypt/${TRANSIT_KEY}`;
  const signPath = "pki/sign/bench";
  const token = await createScopedToken(server.url, "bench-cluster", [encryptPath, signPath]);
  return {
    token,
    encrypt: [encryptPath, { plaintext: PLAINTEXT }],
    sign: [signPath, { csr, common_name: COMMON_NAME }],
  };
}

/**
 * Loads every server at once with its share of `connections` for
 * `seconds`, and returns the summed requests per second, the highest p99
 * and the summed errors.
 */
async function loadSpread(
  servers: RunningServer[],
  [path, body]: [string, unknown],
  token: string,
  seconds: number,
): Promise<LoadResult> {
  const results = await Promise.all(
    servers.map((server, index) => {
      const share =
        Math.floor(connections / servers.length) + (index < connections % servers.length ? 1 : 0);
      return load(`${server.url}/v1/${path}`, body, {
        duration: seconds,
        connections: Math.max(1, share),
        token,
      });
    }),
  );
  return {
    rps: results.reduce((sum, result) => sum + result.rps, 0),
    p99: Math.max(...results.map((result) => result.p99)),
    errors: results.reduce((sum, result) => sum + result.errors, 0),
  };
}

/** Measures encrypt and then sign on `servers`, each after a short warm-up. */
async function measure(name: string, servers: RunningServer[], workload: Workload): Promise<Row> {
  await loadSpread(servers, workload.encrypt, workload.token, WARM_UP_SECONDS);
  const encrypt = await loadSpread(servers, workload.encrypt, workload.token, duration);
  await loadSpread(servers, workload.sign, workload.token, WARM_UP_SECONDS);
  const sign = await loadSpread(servers, workload.sign, workload.token, duration);
  console.error(`measured ${name}`);
  return { name, encrypt, sign };
}

/**
 * Starts node `nodeId` in dev mode on the PostgreSQL database at
 * `storageUrl`, with its own data directory under `root`. A node after the
 * first gets a copy of the first node's dev unseal key, so it unseals
 * itself.
 */
async function startNode(
  root: string,
  nodeId: string,
  storageUrl: string,
  firstDataDir?: string,
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = join(root, nodeId);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (firstDataDir !== undefined) {
    copyFileSync(join(firstDataDir, DEV_UNSEAL_KEY_FILE), join(dataDir, DEV_UNSEAL_KEY_FILE));
  }
  const started = await startProcess(
    process.execPath,
    [
      "bin/keyward.js",
      "server",
      "--dev",
      "--dev-root-token",
      ROOT_TOKEN,
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
      "--node-id",
      nodeId,
    ],
    /Address:\s+(\S+)/,
    // The URL carries the database password, so it goes in the environment, not the arguments.
    { KEYWARD_STORAGE: storageUrl },
  );
  return {
    child: started.child,
    url: started.match,
    dataDir,
    stop: async () => {
      started.child.kill("SIGTERM");
      await exited(started.child);
    },
  };
}

function ratio(value: number, reference: number): string {
  return reference > 0 ? (value / reference).toFixed(2) : "-";
}

function printTable(rows: Row[]): void {
  const sqlite = rows[0] as Row;
  const onePostgres = rows[1] ?? sqlite;
  console.log(
    "| nodes | encrypt req/s | / SQLite | / 1 node PG | encrypt p99 ms | sign req/s | / SQLite | / 1 node PG | sign p99 ms | errors |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.encrypt.rps.toFixed(0)} | ${ratio(row.encrypt.rps, sqlite.encrypt.rps)} | ${ratio(row.encrypt.rps, onePostgres.encrypt.rps)} | ${row.encrypt.p99} | ` +
        `${row.sign.rps.toFixed(0)} | ${ratio(row.sign.rps, sqlite.sign.rps)} | ${ratio(row.sign.rps, onePostgres.sign.rps)} | ${row.sign.p99} | ${row.encrypt.errors + row.sign.errors} |`,
    );
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(maxNodes) || maxNodes < 1) {
    console.error(`--nodes must be a positive integer, got ${values.nodes}`);
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), "keyward-bench-cluster-"));
  const rows: Row[] = [];
  try {
    const csr = makeCsr(dir);

    const sqliteServer = await startDevServer();
    try {
      const workload = await prepare(sqliteServer, csr);
      rows.push(await measure("1, SQLite", [sqliteServer], workload));
    } finally {
      await sqliteServer.stop();
    }

    const postgres = await startPostgres();
    const nodes: (RunningServer & { dataDir: string })[] = [];
    try {
      nodes.push(await startNode(dir, "node-1", postgres.url));
      const workload = await prepare(nodes[0] as RunningServer, csr);
      for (let count = 1; count <= maxNodes; count++) {
        if (count > 1) {
          nodes.push(await startNode(dir, `node-${count}`, postgres.url, nodes[0]?.dataDir));
        }
        rows.push(await measure(`${count}, PostgreSQL`, nodes, workload));
      }
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
      await postgres.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
  );
  console.log(
    `load: autocannon, ${connections} connections in all, split evenly over the nodes, ${duration} s per case after ${WARM_UP_SECONDS} s of warm-up; ` +
      "encrypt: 64-byte plaintext, AES-256-GCM; sign: one P-256 CSR, ECDSA P-256 root\n",
  );
  printTable(rows);
}

await main();
