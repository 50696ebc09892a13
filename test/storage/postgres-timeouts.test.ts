import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import pg from "pg";
import { KeywardError } from "../../src/errors.ts";
import { parsePostgresUrl } from "../../src/storage/postgres/connection.ts";
import {
  DEFAULT_POSTGRES_TIMEOUTS,
  openPostgresStorage,
  type PostgresStorageOptions,
} from "../../src/storage/postgres/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { type ServerProcess, startDevServer } from "../helpers/server-process.ts";

// Bounded waits on PostgreSQL. A stopped server (SIGSTOP, which looks like
// a network that drops every packet) and a lock held by another session
// make calls fail with storage_unavailable instead of hanging. Calls
// succeed again once the server resumes or the lock is released.

const skip = postgresSkipReason();
let server: PostgresServer;

/**
 * The timeouts of the tests that stop the server or hold a lock: short,
 * so the tests run quickly, and long enough for a loaded machine to
 * complete every healthy query in time.
 */
const SHORT_TIMEOUTS = {
  connect_timeout: "2",
  statement_timeout: "1500",
  lock_timeout: "500",
  idle_in_transaction_session_timeout: "10000",
  query_timeout: "2000",
};
/**
 * How long a test waits for a call that must end on its own before it
 * counts the call as hung. It is a hang detector, far above the
 * timeouts, not a measure of them.
 */
const HANG_LIMIT_MS = 60_000;

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function withParameters(url: string, parameters: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [name, value] of Object.entries(parameters)) parsed.searchParams.set(name, value);
  return parsed.toString();
}

/** Rejects when `promise` has not settled within `HANG_LIMIT_MS`. */
async function withinHangLimit<T>(promise: Promise<T>, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${description} did not finish within ${HANG_LIMIT_MS} ms`)),
      HANG_LIMIT_MS,
    );
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that a storage call failed with `storage_unavailable`, and returns its driver code. */
async function assertUnavailable(call: Promise<unknown>, description: string): Promise<unknown> {
  let failure: unknown;
  await withinHangLimit(
    call.then(
      () => assert.fail(`${description} succeeded while the database could not serve it`),
      (error: unknown) => {
        failure = error;
      },
    ),
    description,
  );
  assert.ok(failure instanceof KeywardError, `${description}: ${inspect(failure)}`);
  assert.equal(failure.code, "storage_unavailable", `${description}: ${inspect(failure)}`);
  assert.equal(failure.status, 503);
  return failure.details?.driverCode;
}

/** Opens a session of its own on `url`, for holding locks. */
async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** Returns the pids of the sessions named `applicationName`. */
async function sessionPids(applicationName: string): Promise<number[]> {
  const client = await connect(server.url);
  try {
    const { rows } = await client.query<{ pid: number }>(
      "select pid from pg_stat_activity where application_name = $1 order by pid",
      [applicationName],
    );
    return rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

/** Returns the pids of the processes whose parent is `parent`, from /proc. */
function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // The process ended while the folder was read.
    }
    // The fields after the command name, which may contain spaces and
    // parentheses, start with the state and then the parent pid.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === parent) children.push(Number(name));
  }
  return children;
}

/**
 * Stops the private server's postmaster and each of its processes
 * (backends, checkpointer, WAL writer...) with SIGSTOP and returns their
 * pids. The postmaster stops first, so no process starts after the list
 * is read. The kernel still accepts connections and data for the stopped
 * processes, so clients see a server that never responds.
 */
function pausePostgres(): number[] {
  assert.ok(server.socketDir !== undefined, "the server has no data folder of its own");
  const pidFile = readFileSync(join(server.socketDir, "data", "postmaster.pid"), "utf8");
  const postmaster = Number(pidFile.split("\n")[0]);
  assert.ok(postmaster > 0, `no postmaster pid in postmaster.pid: ${pidFile}`);
  process.kill(postmaster, "SIGSTOP");
  const children = childPids(postmaster);
  for (const pid of children) process.kill(pid, "SIGSTOP");
  return [postmaster, ...children];
}

/** Resumes the processes `pausePostgres` stopped; a process that has ended is skipped. */
function resumePostgres(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGCONT");
    } catch (error) {
      if ((error as { code?: string }).code !== "ESRCH") throw error;
    }
  }
}

describe("postgresql timeout parameters", () => {
  const base = "postgres://keyward:pw-5ecret@db.example/keyward";

  it("defaults apply without parameters", () => {
    const { config, timeouts } = parsePostgresUrl(base);
    assert.deepEqual(timeouts, DEFAULT_POSTGRES_TIMEOUTS);
    assert.equal(config.connectionTimeoutMillis, DEFAULT_POSTGRES_TIMEOUTS.connectMs);
    assert.equal(config.statement_timeout, DEFAULT_POSTGRES_TIMEOUTS.statementMs);
    assert.equal(config.lock_timeout, DEFAULT_POSTGRES_TIMEOUTS.lockMs);
    assert.equal(
      config.idle_in_transaction_session_timeout,
      DEFAULT_POSTGRES_TIMEOUTS.idleInTransactionMs,
    );
    assert.equal(config.query_timeout, DEFAULT_POSTGRES_TIMEOUTS.queryMs);
    assert.ok(DEFAULT_POSTGRES_TIMEOUTS.queryMs > DEFAULT_POSTGRES_TIMEOUTS.statementMs);
  });

  it("parameters set every timeout", () => {
    const { config, timeouts } = parsePostgresUrl(
      withParameters(base, {
        connect_timeout: "3",
        statement_timeout: "4000",
        lock_timeout: "250",
        idle_in_transaction_session_timeout: "60000",
        query_timeout: "4500",
      }),
    );
    assert.deepEqual(timeouts, {
      connectMs: 3000,
      statementMs: 4000,
      lockMs: 250,
      idleInTransactionMs: 60_000,
      queryMs: 4500,
    });
    assert.equal(config.connectionTimeoutMillis, 3000);
    assert.equal(config.statement_timeout, 4000);
    assert.equal(config.lock_timeout, 250);
    assert.equal(config.idle_in_transaction_session_timeout, 60_000);
    assert.equal(config.query_timeout, 4500);
  });

  it("query timeout follows the statement timeout", () => {
    const { timeouts } = parsePostgresUrl(withParameters(base, { statement_timeout: "60000" }));
    assert.equal(timeouts.statementMs, 60_000);
    assert.equal(timeouts.queryMs, 65_000);
  });

  const invalid: Array<[string, Record<string, string>, RegExp]> = [
    ["zero connect_timeout", { connect_timeout: "0" }, /connect_timeout "0" is invalid/],
    ["negative statement_timeout", { statement_timeout: "-1" }, /statement_timeout "-1"/],
    ["lock_timeout with a unit", { lock_timeout: "5s" }, /lock_timeout "5s"/],
    ["fractional query_timeout", { query_timeout: "1.5" }, /query_timeout "1.5"/],
    [
      "idle timeout beyond 32 bits",
      { idle_in_transaction_session_timeout: "2147483648" },
      /idle_in_transaction_session_timeout "2147483648"/,
    ],
    ["connect_timeout in milliseconds", { connect_timeout: "5000000" }, /seconds from 1/],
    [
      "query_timeout below statement_timeout",
      { statement_timeout: "5000", query_timeout: "1000" },
      /query_timeout 1000 is shorter than statement_timeout 5000/,
    ],
  ];
  for (const [title, parameters, message] of invalid) {
    it(`rejects ${title}`, () => {
      assert.throws(
        () => parsePostgresUrl(withParameters(base, parameters)),
        (error) => {
          assert.ok(error instanceof KeywardError);
          assert.equal(error.code, "invalid_request");
          assert.match(error.message, message);
          assert.ok(!error.message.includes("pw-5ecret"), "the message shows the password");
          return true;
        },
      );
    });
  }

  /** Asserts that parsing `url` fails with `invalid_request` and a message matching `message`. */
  function assertRejected(url: string, message: RegExp): void {
    assert.throws(
      () => parsePostgresUrl(url),
      (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "invalid_request");
        assert.match(error.message, message);
        assert.ok(!error.message.includes("pw-5ecret"), "the message shows the password");
        return true;
      },
    );
  }

  it("rejects a repeated timeout", () => {
    // URLSearchParams.get returns the first value, so the 0 used to pass unnoticed.
    assertRejected(
      `${base}?statement_timeout=1000&statement_timeout=0`,
      /statement_timeout is given more than once/,
    );
  });

  it("rejects a repeated sslmode", () => {
    assertRejected(
      `${base}?sslmode=disable&sslmode=verify-full`,
      /sslmode is given more than once/,
    );
  });

  it("escapes control characters in values", () => {
    // A NUL after the digits used to print as "1000", a value that looks valid.
    assertRejected(
      `${base}?statement_timeout=1000%00`,
      /statement_timeout "1000\\u0000" is invalid/,
    );
    assertRejected(`${base}?lock_timeout=%0Afake`, /lock_timeout "\\nfake" is invalid/);
  });
});

describe("postgresql storage timeouts", { skip, timeout: 10 * HANG_LIMIT_MS }, () => {
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.stop();
  });

  /** Opens storage on a new database with `SHORT_TIMEOUTS` and the given parameters. */
  async function openShort(
    parameters: Record<string, string> = {},
    options: Omit<PostgresStorageOptions, "url"> = {},
  ): Promise<{ storage: Storage; url: string }> {
    const url = withParameters(await server.createDatabase(), {
      ...SHORT_TIMEOUTS,
      ...parameters,
    });
    return { storage: await openPostgresStorage({ url, ...options }), url };
  }

  describe("locks", () => {
    it("write fails after lock_timeout", async () => {
      const { storage, url } = await openShort();
      const holder = await connect(url);
      try {
        await storage.put("locked", bytes("before"));
        // EXCLUSIVE mode blocks writes to the table and lets reads through.
        await holder.query("begin");
        await holder.query("lock table entries in exclusive mode");

        const code = await assertUnavailable(storage.put("locked", bytes("during")), "the put");
        assert.equal(code, "55P03");
        assert.deepEqual(Buffer.from((await storage.get("locked"))!), Buffer.from("before"));

        await holder.query("commit");
        await storage.put("locked", bytes("after"));
        assert.deepEqual(Buffer.from((await storage.get("locked"))!), Buffer.from("after"));
      } finally {
        await holder.end();
        await storage.close();
      }
    });

    it("start failure names the timeout", async () => {
      const url = withParameters(await server.createDatabase(), SHORT_TIMEOUTS);
      await (await openPostgresStorage({ url })).close();
      const holder = await connect(url);
      try {
        // The migrator reads its table at every start, so this lock makes it wait.
        await holder.query("begin");
        await holder.query("lock table schema_migrations in access exclusive mode");
        await withinHangLimit(
          assert.rejects(openPostgresStorage({ url }), (error) => {
            assert.ok(error instanceof KeywardError, inspect(error));
            assert.equal(error.code, "storage_failure");
            assert.match(error.message, /failed to migrate its schema: .*lock timeout/);
            assert.match(error.message, /\(lock_timeout is 500 ms\)$/);
            return true;
          }),
          "the open",
        );
      } finally {
        await holder.query("rollback");
        await holder.end();
      }
    });

    it("statement_timeout ends a long wait", async () => {
      // With lock_timeout above statement_timeout, the statement timeout
      // is the one that cancels the waiting write.
      const { storage, url } = await openShort({ statement_timeout: "500", lock_timeout: "1500" });
      const holder = await connect(url);
      try {
        await holder.query("begin");
        await holder.query("lock table entries in exclusive mode");
        const code = await assertUnavailable(storage.put("k", bytes("v")), "the put");
        assert.equal(code, "57014");
        await holder.query("commit");
        await storage.put("k", bytes("v"));
      } finally {
        await holder.end();
        await storage.close();
      }
    });

    it("locked transaction rolls back", async () => {
      const { storage, url } = await openShort();
      const holder = await connect(url);
      try {
        await storage.put("b", bytes("old"));
        await holder.query("begin");
        await holder.query("select key from entries where key = 'b' for update");

        const code = await assertUnavailable(
          storage.transaction(async (tx) => {
            await tx.put("a", bytes("new"));
            await tx.put("b", bytes("new"));
          }),
          "the transaction",
        );
        assert.equal(code, "55P03");
        await holder.query("commit");

        assert.equal(
          await storage.get("a"),
          undefined,
          "the first write of the transaction stayed",
        );
        assert.deepEqual(Buffer.from((await storage.get("b"))!), Buffer.from("old"));
        await storage.transaction(async (tx) => {
          await tx.put("a", bytes("new"));
          await tx.put("b", bytes("new"));
        });
        assert.deepEqual(Buffer.from((await storage.get("a"))!), Buffer.from("new"));
      } finally {
        await holder.end();
        await storage.close();
      }
    });
  });

  describe("stopped server", () => {
    it("calls fail, then recover", async (t) => {
      if (!server.private) return t.skip("needs a private server to stop");
      // One connection, so the one that timed out is known.
      const { storage } = await openShort(
        { application_name: "keyward-paused-calls" },
        { maxConnections: 1 },
      );
      let paused: number[] = [];
      try {
        await storage.put("k", bytes("before"));
        const [before] = await sessionPids("keyward-paused-calls");
        assert.ok(before !== undefined, "the pool has no open session");

        paused = pausePostgres();
        // The pooled connection sends the query and never hears back.
        const readCode = await assertUnavailable(storage.get("k"), "the get");
        // No SQLSTATE: Keyward's own query timeout ended the wait.
        assert.equal(readCode, undefined);
        // That connection was discarded, so the next call opens a new one,
        // which the stopped server never lets finish.
        await assertUnavailable(storage.put("k", bytes("during")), "the put");
        resumePostgres(paused);
        paused = [];

        await withinHangLimit(storage.put("k", bytes("after")), "the put after resuming");
        assert.deepEqual(Buffer.from((await storage.get("k"))!), Buffer.from("after"));

        // The backend of the discarded connection ends once it reads from the
        // closed socket, and only the new connection remains.
        let pids: number[] = [];
        for (let waited = 0; waited < 500; waited++) {
          pids = await sessionPids("keyward-paused-calls");
          if (!pids.includes(before)) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.ok(!pids.includes(before), `session ${before} is still open: ${pids.join(", ")}`);
        assert.equal(pids.length, 1, `sessions: ${pids.join(", ")}`);
      } finally {
        resumePostgres(paused);
        await storage.close();
      }
    });

    it("transaction rolls back", async (t) => {
      if (!server.private) return t.skip("needs a private server to stop");
      const { storage } = await openShort({}, { maxConnections: 1 });
      let paused: number[] = [];
      try {
        await assertUnavailable(
          storage.transaction(async (tx) => {
            await tx.put("first", bytes("v"));
            paused = pausePostgres();
            await tx.put("second", bytes("v"));
          }),
          "the transaction",
        );
        resumePostgres(paused);
        paused = [];

        assert.equal(
          await withinHangLimit(storage.get("first"), "the get after resuming"),
          undefined,
          "a write of the timed-out transaction was committed",
        );
        assert.equal(await storage.get("second"), undefined);
      } finally {
        resumePostgres(paused);
        await storage.close();
      }
    });

    it("close finishes while stopped", async (t) => {
      if (!server.private) return t.skip("needs a private server to stop");
      const { storage } = await openShort();
      let paused: number[] = [];
      try {
        // Leaves open connections in the pool.
        await Promise.all(Array.from({ length: 3 }, (_, i) => storage.put(`k${i}`, bytes("v"))));
        paused = pausePostgres();
        const pending = storage.get("k0").catch((error: unknown) => error);
        await withinHangLimit(storage.close(), "closing the storage");
        const failure = await pending;
        assert.ok(failure instanceof KeywardError, inspect(failure));
        assert.equal(failure.code, "storage_unavailable");
      } finally {
        resumePostgres(paused);
      }
    });
  });

  describe("keyward server", () => {
    const servers: ServerProcess[] = [];
    after(async () => {
      for (const keyward of servers) await keyward.stop("SIGKILL");
    });

    /** Starts a dev server on a new database with `SHORT_TIMEOUTS`. */
    async function startKeyward(): Promise<{ keyward: ServerProcess; url: string }> {
      const url = withParameters(await server.createDatabase(), SHORT_TIMEOUTS);
      const keyward = await startDevServer({ args: ["--storage", url] });
      servers.push(keyward);
      return { keyward, url };
    }

    /** Writes an ACL policy: a request that always reaches the storage. */
    async function writePolicy(keyward: ServerProcess, name: string) {
      const response = await withinHangLimit(
        fetch(`${keyward.address}/v1/sys/policies/acl/${name}`, {
          method: "PUT",
          headers: { "content-type": "application/json", "x-vault-token": keyward.rootToken },
          body: JSON.stringify({ policy: 'path "secret/*" { capabilities = ["read"] }' }),
        }),
        `writing policy ${name}`,
      );
      const text = await response.text();
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
    }

    it("returns 503 while stopped, then recovers", async (t) => {
      if (!server.private) return t.skip("needs a private server to stop");
      const { keyward } = await startKeyward();
      let paused: number[] = [];
      try {
        assert.equal((await writePolicy(keyward, "before")).status, 204);
        paused = pausePostgres();
        const during = await writePolicy(keyward, "during");
        assert.equal(during.status, 503, JSON.stringify(during.body));
        assert.equal(during.body.code, "storage_unavailable");
        resumePostgres(paused);
        paused = [];

        const afterwards = await writePolicy(keyward, "after");
        assert.equal(afterwards.status, 204, JSON.stringify(afterwards.body));
      } finally {
        resumePostgres(paused);
      }
      assert.equal(keyward.child.exitCode, null, keyward.output());
    });

    it("returns 503 while a lock is held", async () => {
      const { keyward, url } = await startKeyward();
      const holder = await connect(url);
      try {
        await holder.query("begin");
        await holder.query("lock table entries in exclusive mode");
        const during = await writePolicy(keyward, "during");
        assert.equal(during.status, 503, JSON.stringify(during.body));
        assert.equal(during.body.code, "storage_unavailable");

        await holder.query("commit");
        const afterwards = await writePolicy(keyward, "after");
        assert.equal(afterwards.status, 204, JSON.stringify(afterwards.body));
      } finally {
        await holder.end();
      }
    });

    it("SIGTERM stops it while stopped", async (t) => {
      if (!server.private) return t.skip("needs a private server to stop");
      const { keyward } = await startKeyward();
      let paused: number[] = [];
      try {
        assert.equal((await writePolicy(keyward, "before")).status, 204);
        paused = pausePostgres();
        const exitCode = await withinHangLimit(keyward.stop("SIGTERM"), "the server's shutdown");
        assert.equal(exitCode, 0, keyward.output());
      } finally {
        resumePostgres(paused);
      }
    });
  });
});
