import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { IN_CI } from "./peers.ts";

/** The environment variable that points the tests at an existing server instead of a private one. */
export const EXTERNAL_URL_VARIABLE = "KEYWARD_TEST_POSTGRES_URL";

const POSTGRES_ROOT = "/usr/lib/postgresql";
/** The user that runs initdb and pg_ctl when the tests run as root (initdb refuses root). */
const POSTGRES_USER = "postgres";
/** How long pg_ctl waits for the server to start or stop, in seconds. */
const PG_CTL_TIMEOUT_SECONDS = 60;

export interface PostgresServer {
  /** A URL, with password, of an empty database created for this server's user. */
  url: string;
  /** Creates another empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** True when the server is private to this test run (false for `KEYWARD_TEST_POSTGRES_URL`). */
  private: boolean;
  /** With `tls`: the self-signed certificate the server presents, PEM, usable as a CA file. */
  caFile?: string;
  /** The private server's Unix socket folder, where the postgres user connects without a password. */
  socketDir?: string;
  /** Stops the server and removes its folder, or drops the databases created on an external server. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /**
   * Starts the private server with `ssl=on` and a self-signed certificate
   * for IP 127.0.0.1 made with openssl. Ignored for an external server.
   */
  tls?: boolean;
}

/** Returns the newest `/usr/lib/postgresql/N/bin` that contains initdb and pg_ctl, or undefined. */
export function findPostgresBin(): string | undefined {
  if (!existsSync(POSTGRES_ROOT)) return undefined;
  const versions = readdirSync(POSTGRES_ROOT)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(POSTGRES_ROOT, version, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "pg_ctl"))) return bin;
  }
  return undefined;
}

/**
 * Returns why the PostgreSQL tests cannot run here, after printing it, or
 * false when they can. In CI (`CI=true`) it always returns false, so
 * `startPostgres` runs and fails with the reason instead of the tests
 * skipping; this mirrors `requirePeer`.
 */
export function postgresSkipReason(): string | false {
  if (process.env[EXTERNAL_URL_VARIABLE] || findPostgresBin() !== undefined || IN_CI) {
    return false;
  }
  const reason = `PostgreSQL is not installed under ${POSTGRES_ROOT}/*/bin and ${EXTERNAL_URL_VARIABLE} is not set (scripts/install-peers.sh installs it)`;
  console.log(`# skipped: ${reason}`);
  return reason;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a program to completion, as the postgres user when this process is root. Throws with its output on failure. */
function run(program: string, args: string[], asPostgres: boolean): string {
  const runAsPostgres = asPostgres && process.getuid?.() === 0;
  const command = runAsPostgres ? "runuser" : program;
  const commandArgs = runAsPostgres ? ["-u", POSTGRES_USER, "--", program, ...args] : args;
  const result = spawnSync(command, commandArgs, { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(
      `${program} failed with status ${result.status}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Gives a file or folder to the postgres user when this process is root. */
function giveToPostgres(path: string): void {
  if (process.getuid?.() !== 0) return;
  const owner = userInfo({ encoding: "utf8" });
  const uid = Number(run("id", ["-u", POSTGRES_USER], false).trim());
  const gid = Number(run("id", ["-g", POSTGRES_USER], false).trim());
  if (owner.uid !== uid) chownSync(path, uid, gid);
}

/** Writes a self-signed certificate for IP 127.0.0.1 and its key, in PEM, with openssl. */
function makeCertificate(folder: string): { certFile: string; keyFile: string } {
  const certFile = join(folder, "server.crt");
  const keyFile = join(folder, "server.key");
  run(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=keyward-test-postgres",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    false,
  );
  giveToPostgres(certFile);
  giveToPostgres(keyFile);
  return { certFile, keyFile };
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates an empty UTF-8 database through the admin URL and returns its name. */
async function createDatabaseAt(adminUrl: string): Promise<string> {
  const name = `keyward_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database ${name} encoding 'UTF8' template template0`);
  } finally {
    await client.end();
  }
  return name;
}

async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const name of names) await client.query(`drop database if exists ${name} with (force)`);
  } finally {
    await client.end();
  }
}

/** Uses the server at `KEYWARD_TEST_POSTGRES_URL`: each database is created there and dropped by `stop`. */
async function useExternalServer(adminUrl: string): Promise<PostgresServer> {
  const created: string[] = [];
  const createDatabase = async () => {
    const name = await createDatabaseAt(adminUrl);
    created.push(name);
    return withDatabase(adminUrl, name);
  };
  return {
    url: await createDatabase(),
    createDatabase,
    private: false,
    stop: () => dropDatabases(adminUrl, created),
  };
}

/**
 * Starts a private PostgreSQL server for one test file. initdb and pg_ctl
 * run as user postgres when this process is root, into a new temporary
 * folder. The server listens on a free port on 127.0.0.1 and on a Unix
 * socket in that folder, with fsync on and password authentication over
 * TCP. Its default collation is ICU's, so a test notices a query that
 * relies on the database's collation instead of byte order. Returns once
 * one database is created. With `KEYWARD_TEST_POSTGRES_URL` set, it uses
 * that server instead and creates the databases there.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const external = process.env[EXTERNAL_URL_VARIABLE];
  if (external) return useExternalServer(external);

  const bin = findPostgresBin();
  if (bin === undefined) {
    throw new Error(
      `PostgreSQL is not installed under ${POSTGRES_ROOT}/*/bin and ${EXTERNAL_URL_VARIABLE} is not set (scripts/install-peers.sh installs it)`,
    );
  }
  const folder = mkdtempSync(join(tmpdir(), "keyward-pg-"));
  const dataDir = join(folder, "data");
  let started = false;
  const stopServer = () => {
    if (!started) return;
    started = false;
    // Immediate mode skips the shutdown checkpoint, which would sync every
    // database the tests created only for the folder to be deleted.
    run(join(bin, "pg_ctl"), ["stop", "-D", dataDir, "-m", "immediate", "-w"], true);
  };
  // A test process that ends without calling stop() still stops its server.
  const onExit = () => {
    try {
      stopServer();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  };
  process.once("exit", onExit);

  try {
    giveToPostgres(folder);
    const password = randomBytes(16).toString("hex");
    const passwordFile = join(folder, "password");
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    giveToPostgres(passwordFile);
    run(
      join(bin, "initdb"),
      [
        "-D",
        dataDir,
        "-U",
        POSTGRES_USER,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        `--pwfile=${passwordFile}`,
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--locale-provider=icu",
        "--icu-locale=en-US",
      ],
      true,
    );

    const settings = [
      "-c listen_addresses=127.0.0.1",
      `-k ${folder}`,
      "-c fsync=on",
      "-c synchronous_commit=on",
      "-c max_connections=200",
    ];
    let caFile: string | undefined;
    if (options.tls) {
      const { certFile, keyFile } = makeCertificate(folder);
      settings.push("-c ssl=on", `-c ssl_cert_file=${certFile}`, `-c ssl_key_file=${keyFile}`);
      caFile = certFile;
    }

    const port = await freePort();
    run(
      join(bin, "pg_ctl"),
      [
        "start",
        "-w",
        "-t",
        String(PG_CTL_TIMEOUT_SECONDS),
        "-D",
        dataDir,
        "-l",
        join(folder, "server.log"),
        "-o",
        [`-p ${port}`, ...settings].join(" "),
      ],
      true,
    );
    started = true;

    const adminUrl = `postgres://${POSTGRES_USER}:${password}@127.0.0.1:${port}/postgres`;
    const createDatabase = async () => withDatabase(adminUrl, await createDatabaseAt(adminUrl));
    return {
      url: await createDatabase(),
      createDatabase,
      private: true,
      socketDir: folder,
      ...(caFile === undefined ? {} : { caFile }),
      async stop() {
        process.removeListener("exit", onExit);
        onExit();
      },
    };
  } catch (error) {
    process.removeListener("exit", onExit);
    onExit();
    throw error;
  }
}
