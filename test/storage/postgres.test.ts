import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import pg from "pg";
import pino from "pino";
import { KeywardError } from "../../src/errors.ts";
import { openStorage } from "../../src/storage/index.ts";
import {
  describePostgresUrl,
  openPostgresStorage,
  POSTGRES_TRANSACTION_ATTEMPTS,
  type PostgresStorageOptions,
} from "../../src/storage/postgres/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { callServer } from "../helpers/http.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { startServerProcess } from "../helpers/server-process.ts";
import { runStorageContract } from "./contract.ts";

const skip = postgresSkipReason();
let server: PostgresServer;

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Opens storage on a new empty database of the test server. */
async function openFresh(options: Omit<PostgresStorageOptions, "url"> = {}): Promise<Storage> {
  return openPostgresStorage({ url: await server.createDatabase(), ...options });
}

/** Runs one query on `url` through its own connection. */
async function query<Row extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

function withParameters(url: string, parameters: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [name, value] of Object.entries(parameters)) parsed.searchParams.set(name, value);
  return parsed.toString();
}

function passwordOf(url: string): string {
  return decodeURIComponent(new URL(url).password);
}

/** Asserts that an error, with its cause and details, never shows the password. */
function assertNoPassword(error: unknown, password: string): void {
  assert.ok(password.length > 0);
  assert.ok(!String((error as Error).message).includes(password), "the message has the password");
  assert.ok(!inspect(error, { depth: 10 }).includes(password), "the inspected error has it");
  assert.ok(!JSON.stringify((error as KeywardError).details ?? {}).includes(password));
}

describe("postgresql storage", { skip }, () => {
  before(async () => {
    server = await startPostgres({ tls: true });
  });
  after(async () => {
    await server?.stop();
  });

  runStorageContract("postgresql", () => openFresh({ checkNestedCalls: true }));

  describe("schema", () => {
    it("records migrations once under concurrent opens", async () => {
      const url = await server.createDatabase();
      const storages = await Promise.all(
        Array.from({ length: 6 }, () => openPostgresStorage({ url })),
      );
      await Promise.all(storages.map((storage) => storage.close()));
      const applied = await query<{ name: string }>(
        url,
        "select name from schema_migrations order by name",
      );
      assert.deepEqual(applied, [{ name: "0001_create_entries" }, { name: "0002_cluster" }]);
    });

    it("key column uses byte collation", async () => {
      const url = await server.createDatabase();
      await (await openPostgresStorage({ url })).close();
      const columns = await query<{ data_type: string; collation_name: string }>(
        url,
        `select column_name, data_type, collation_name from information_schema.columns
         where table_name = 'entries' order by ordinal_position`,
      );
      assert.equal(columns[0]?.data_type, "text");
      assert.equal(columns[0]?.collation_name, "C");
      assert.equal(columns[1]?.data_type, "bytea");
    });

    it("prefix range scan uses the index", async () => {
      const url = await server.createDatabase();
      const storage = await openPostgresStorage({ url });
      try {
        await storage.transaction(async (tx) => {
          for (let i = 0; i < 500; i++) await tx.put(`scan/${i}/value`, bytes("v"));
        });
      } finally {
        await storage.close();
      }
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query("analyze entries");
        // The planner prefers a sequential scan on a small table; turning it
        // off shows whether the index can serve the query at all.
        await client.query("set enable_seqscan = off");
        // The shape of the range query `list` runs: the index returns the
        // keys in order, so no sort is needed.
        const range = await client.query(
          "explain (format json) select key from entries where key >= $1 and key < $2 order by key limit 256",
          ["scan/", "scan0"],
        );
        const rangePlan = JSON.stringify(range.rows[0]["QUERY PLAN"]);
        assert.match(rangePlan, /"Index (Only )?Scan"/, rangePlan);
        assert.match(rangePlan, /entries_pkey/, rangePlan);
        assert.doesNotMatch(rangePlan, /"Sort"/, rangePlan);

        // A LIKE prefix becomes a range condition on the same index.
        const like = await client.query(
          "explain (format json) select key from entries where key like 'scan/1%'",
        );
        const likePlan = JSON.stringify(like.rows[0]["QUERY PLAN"]);
        assert.match(likePlan, /entries_pkey/, likePlan);
        assert.match(likePlan, /"Index Cond":"\(\(key >= 'scan\/1'::text\)/, likePlan);
      } finally {
        await client.end();
      }
    });

    it("rejects a database from a newer build", async () => {
      const url = await server.createDatabase();
      await (await openPostgresStorage({ url })).close();
      await query(url, "insert into schema_migrations (name, timestamp) values ($1, $2)", [
        "9999_from_the_future",
        new Date().toISOString(),
      ]);
      await assert.rejects(openPostgresStorage({ url }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /failed to migrate/);
        return true;
      });
    });

    it("rejects a database not in UTF-8", async () => {
      const url = await server.createDatabase();
      const name = `${new URL(url).pathname.slice(1)}_latin1`;
      await query(
        url,
        `create database ${name} encoding 'LATIN1' locale_provider 'libc' locale 'C' template template0`,
      );
      const asciiUrl = new URL(url);
      asciiUrl.pathname = `/${name}`;
      await assert.rejects(openPostgresStorage({ url: asciiUrl.toString() }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /uses encoding LATIN1/);
        return true;
      });
    });

    it("opens through openStorage with kind postgresql", async () => {
      const storage = await openStorage(await server.createDatabase());
      try {
        assert.equal(storage.kind, "postgresql");
        await storage.put("k", bytes("v"));
        assert.deepEqual(Buffer.from((await storage.get("k"))!), Buffer.from("v"));
      } finally {
        await storage.close();
      }
    });
  });

  describe("transactions", () => {
    it("retries a serialization failure", async () => {
      const storage = await openFresh();
      try {
        await storage.put("counter", bytes("0"));
        let attempts = 0;
        let readers = 0;
        let bothRead!: () => void;
        const bothHaveRead = new Promise<void>((resolve) => {
          bothRead = resolve;
        });
        // Both transactions read the counter before either writes, so the
        // second to write conflicts with the first (SQLSTATE 40001) and
        // must run again to see the first one's value.
        const increment = () =>
          storage.transaction(async (tx) => {
            attempts += 1;
            const current = Number(Buffer.from((await tx.get("counter"))!).toString());
            if (attempts <= 2) {
              readers += 1;
              if (readers === 2) bothRead();
              await bothHaveRead;
            }
            await tx.put("counter", bytes(String(current + 1)));
          });
        await Promise.all([increment(), increment()]);
        assert.equal(Buffer.from((await storage.get("counter"))!).toString(), "2");
        assert.equal(attempts, 3);
      } finally {
        await storage.close();
      }
    });

    it("fails with write_conflict once the retries run out", async () => {
      const warnings: Record<string, unknown>[] = [];
      const logger = pino(
        { level: "warn" },
        { write: (line: string) => warnings.push(JSON.parse(line)) },
      );
      const storage = await openFresh({ logger });
      try {
        let attempts = 0;
        const conflict = new KeywardError("storage_failure", "simulated conflict", {
          details: { driverCode: "40001" },
        });
        let failure: unknown;
        await storage
          .transaction(async (tx) => {
            attempts += 1;
            await tx.put("k", bytes(String(attempts)));
            throw conflict;
          })
          .catch((error: unknown) => {
            failure = error;
          });
        assert.ok(failure instanceof KeywardError, `unexpected failure ${inspect(failure)}`);
        assert.equal(failure.code, "write_conflict");
        assert.equal(failure.status, 503);
        assert.equal(failure.cause, conflict);
        assert.equal(failure.details?.attempts, attempts);
        assert.equal(failure.details?.driverCode, "40001");
        // The time budget or the attempt limit ends the retries.
        assert.ok(attempts > 1, `ran ${attempts} attempts`);
        assert.ok(attempts <= POSTGRES_TRANSACTION_ATTEMPTS, `ran ${attempts} attempts`);
        assert.equal(await storage.get("k"), undefined);
        const logged = warnings.find((line) => line.attempts === attempts);
        assert.ok(logged !== undefined, `no warning names the attempts: ${inspect(warnings)}`);
        assert.equal(logged.driverCode, "40001");
      } finally {
        await storage.close();
      }
    });

    it("runs other failures once", async () => {
      const storage = await openFresh();
      try {
        let attempts = 0;
        await assert.rejects(
          storage.transaction(async () => {
            attempts += 1;
            throw new KeywardError("storage_failure", "not a conflict", {
              details: { driverCode: "23505" },
            });
          }),
          /not a conflict/,
        );
        assert.equal(attempts, 1);
      } finally {
        await storage.close();
      }
    });
  });

  describe("errors", () => {
    it("driver errors carry the SQLSTATE", async () => {
      const url = await server.createDatabase();
      const storage = await openPostgresStorage({ url });
      try {
        await query(url, "drop table entries");
        await assert.rejects(storage.get("k"), (error) => {
          assert.ok(error instanceof KeywardError);
          assert.equal(error.code, "storage_failure");
          assert.equal(error.message, "postgresql storage failed to read a value");
          assert.deepEqual(error.details, { driverCode: "42P01" });
          return true;
        });
        await assert.rejects(
          storage.transaction((tx) => tx.put("k", bytes("v"))),
          (error) => {
            assert.ok(error instanceof KeywardError);
            assert.equal(error.code, "storage_failure");
            assert.deepEqual(error.details, { driverCode: "42P01" });
            return true;
          },
        );
      } finally {
        await storage.close();
      }
    });

    it("rejected login hides the credentials", async () => {
      const url = new URL(server.url);
      url.username = "probe_user_9c1";
      url.password = "wrong-password-4f1c9e";
      await assert.rejects(openPostgresStorage({ url: url.toString() }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /the server rejected the login \(SQLSTATE 28P01\)/);
        assert.match(error.message, /check the user name and password/);
        assert.deepEqual(error.details, { driverCode: "28P01" });
        assertNoPassword(error, "wrong-password-4f1c9e");
        assert.ok(!error.message.includes("probe_user_9c1"), "the message names the user");
        return true;
      });
    });

    it("refused connection hides the password", async () => {
      const url = new URL(server.url);
      url.password = "secret-for-a-closed-port";
      url.port = "1";
      await assert.rejects(openPostgresStorage({ url: url.toString() }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /failed to connect to postgres:\/\/127\.0\.0\.1:1\//);
        assert.deepEqual(error.details, { driverCode: "ECONNREFUSED" });
        assertNoPassword(error, "secret-for-a-closed-port");
        return true;
      });
    });

    it("missing database fails with 3D000", async () => {
      const url = new URL(server.url);
      url.pathname = "/no_such_database";
      await assert.rejects(openPostgresStorage({ url: url.toString() }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.deepEqual(error.details, { driverCode: "3D000" });
        assertNoPassword(error, passwordOf(server.url));
        return true;
      });
    });

    const invalidUrls: Array<[string, string, RegExp]> = [
      ["fail sslmode prefer", "postgres://u:pw-123456@127.0.0.1/db?sslmode=prefer", /sslmode/],
      ["fail unknown parameter", "postgres://u:pw-123456@127.0.0.1/db?pool=3", /"pool"/],
      ["fail bad percent-encoding", "postgres://u:pw-123456%zz@127.0.0.1/db", /password/],
      ["fail path with a slash", "postgres://u:pw-123456@127.0.0.1/db/x", /single database/],
    ];
    for (const [title, url, message] of invalidUrls) {
      it(title, async () => {
        await assert.rejects(openPostgresStorage({ url }), (error) => {
          assert.ok(error instanceof KeywardError);
          assert.equal(error.code, "invalid_request");
          assert.match(error.message, message);
          assertNoPassword(error, "pw-123456");
          return true;
        });
      });
    }

    it("description omits user and password", () => {
      assert.equal(
        describePostgresUrl("postgres://keyward:s3cret@db.example:5433/kms?sslmode=require"),
        "postgres://db.example:5433/kms",
      );
      assert.equal(describePostgresUrl("postgres://[unclosed"), "postgres://(invalid URL)");
    });
  });

  describe("connections", () => {
    /** Returns whether each of the sessions named `applicationName` uses TLS. */
    async function sessionsUseTls(applicationName: string): Promise<boolean[]> {
      const rows = await query<{ ssl: boolean }>(
        server.url,
        `select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid)
         where a.application_name = $1`,
        [applicationName],
      );
      return rows.map((row) => row.ssl);
    }

    async function openWithTls(
      sslmode: string,
      caFile: string | undefined,
      applicationName: string,
    ): Promise<boolean[]> {
      const url = withParameters(await server.createDatabase(), {
        sslmode,
        application_name: applicationName,
      });
      const storage = await openPostgresStorage({
        url,
        ...(caFile === undefined ? {} : { caFile }),
      });
      try {
        await storage.put("tls", bytes(sslmode));
        assert.deepEqual(Buffer.from((await storage.get("tls"))!), Buffer.from(sslmode));
        return await sessionsUseTls(applicationName);
      } finally {
        await storage.close();
      }
    }

    it("sslmode disable uses plaintext", async (t) => {
      if (server.caFile === undefined) return t.skip("the external server's TLS is unknown");
      const sessions = await openWithTls("disable", undefined, "keyward-tls-disable");
      assert.ok(sessions.length > 0);
      assert.ok(sessions.every((ssl) => ssl === false));
    });

    it("sslmode require uses TLS", async (t) => {
      if (server.caFile === undefined) return t.skip("the external server's TLS is unknown");
      const sessions = await openWithTls("require", undefined, "keyward-tls-require");
      assert.ok(sessions.length > 0);
      assert.ok(sessions.every((ssl) => ssl === true));
    });

    it("verify-full accepts the CA file", async (t) => {
      if (server.caFile === undefined) return t.skip("the external server's TLS is unknown");
      const sessions = await openWithTls("verify-full", server.caFile, "keyward-tls-full");
      assert.ok(sessions.length > 0);
      assert.ok(sessions.every((ssl) => ssl === true));
    });

    it("verify-ca reads sslrootcert", async (t) => {
      if (server.caFile === undefined) return t.skip("the external server's TLS is unknown");
      const url = withParameters(await server.createDatabase(), {
        sslmode: "verify-ca",
        sslrootcert: server.caFile,
      });
      const storage = await openPostgresStorage({ url });
      await storage.close();
    });

    it("verify-full rejects an unknown CA", async (t) => {
      if (server.caFile === undefined) return t.skip("the external server's TLS is unknown");
      const url = withParameters(await server.createDatabase(), { sslmode: "verify-full" });
      await assert.rejects(openPostgresStorage({ url }), (error) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "storage_failure");
        assert.match(error.message, /self-signed certificate/);
        assertNoPassword(error, passwordOf(url));
        return true;
      });
    });

    it("connects through a Unix socket", async (t) => {
      if (server.socketDir === undefined) return t.skip("the external server has no known socket");
      const { port, pathname } = new URL(await server.createDatabase());
      // The host parameter, a socket folder, takes the place of the host
      // name; the port names the socket file.
      const socket = encodeURIComponent(server.socketDir);
      const url = `postgres://postgres@localhost:${port}${pathname}?host=${socket}`;
      const storage = await openPostgresStorage({ url });
      try {
        await storage.put("socket", bytes("v"));
        assert.deepEqual(await storage.list(""), ["socket"]);
      } finally {
        await storage.close();
      }
    });

    it("replaces connections the server ended", async () => {
      const lines: string[] = [];
      const logger = pino(
        { level: "warn" },
        {
          write: (line: string) => {
            lines.push(line);
          },
        },
      );
      const url = withParameters(await server.createDatabase(), {
        application_name: "keyward-terminated",
      });
      const storage = await openPostgresStorage({ url, logger });
      try {
        await Promise.all(
          Array.from({ length: 5 }, (_, i) => storage.put(`before/${i}`, bytes("v"))),
        );
        const ended = await query<{ pid: number }>(
          server.url,
          // MATERIALIZED keeps the filter ahead of pg_terminate_backend.
          `with targets as materialized (
             select pid from pg_stat_activity where application_name = $1
           )
           select pid from targets where pg_terminate_backend(pid)`,
          ["keyward-terminated"],
        );
        assert.ok(ended.length > 0);
        // The pool hears of each ended connection as an error event, logs
        // it and drops the connection.
        for (let waited = 0; waited < 500 && lines.length < ended.length; waited++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.equal(lines.length, ended.length, "one warning per ended connection");
        const logged = JSON.parse(lines[0]!);
        assert.equal(logged.driverCode, "57P01");
        assert.match(logged.msg, /failed while idle/);
        assert.ok(!lines.join("\n").includes(passwordOf(url)));

        await storage.put("after", bytes("v"));
        assert.equal((await storage.list("before/")).length, 5);
      } finally {
        await storage.close();
      }
    });

    it("pool stays within its size", async () => {
      const url = withParameters(await server.createDatabase(), {
        application_name: "keyward-pool-size",
      });
      const storage = await openPostgresStorage({ url, maxConnections: 3 });
      try {
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => storage.put(`pool/${i}`, bytes(String(i)))),
        );
        assert.equal((await storage.list("pool/")).length, 40);
        const sessions = await query<{ count: string }>(
          server.url,
          "select count(*) from pg_stat_activity where application_name = $1",
          ["keyward-pool-size"],
        );
        assert.ok(Number(sessions[0]?.count) <= 3, `sessions: ${sessions[0]?.count}`);
      } finally {
        await storage.close();
      }
    });
  });

  describe("keyward server on postgresql", () => {
    const dataDirs: string[] = [];
    after(() => {
      for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
    });

    async function unseal(address: string, shares: string[]) {
      for (const key of shares) {
        const result = await callServer(address, "PUT", "sys/unseal", { key });
        assert.equal(result.status, 200, JSON.stringify(result.body));
      }
      const status = await callServer(address, "GET", "sys/seal-status");
      assert.equal(status.body.sealed, false);
      return status.body;
    }

    it("serves transit and survives restart", async () => {
      const url = await server.createDatabase();
      const password = passwordOf(url);
      const firstDataDir = mkdtempSync(join(tmpdir(), "keyward-pg-server-"));
      const secondDataDir = mkdtempSync(join(tmpdir(), "keyward-pg-server-"));
      dataDirs.push(firstDataDir, secondDataDir);

      // First start: the URL comes from KEYWARD_STORAGE.
      const first = await startServerProcess(["--data-dir", firstDataDir, "--log-level", "info"], {
        KEYWARD_STORAGE: url,
      });
      let shares: string[];
      let rootToken: string;
      const plaintext = Buffer.from("stored in postgresql").toString("base64");
      let ciphertext: string;
      try {
        const initialised = await callServer(first.address, "PUT", "sys/init", {
          secret_shares: 3,
          secret_threshold: 2,
        });
        assert.equal(initialised.status, 200, JSON.stringify(initialised.body));
        shares = initialised.body.keys;
        rootToken = initialised.body.root_token;
        const status = await unseal(first.address, shares.slice(0, 2));
        assert.equal(status.storage_type, "postgresql");

        const created = await callServer(
          first.address,
          "POST",
          "transit/keys/orders",
          {},
          rootToken,
        );
        assert.ok(created.status < 300, JSON.stringify(created.body));
        const encrypted = await callServer(
          first.address,
          "POST",
          "transit/encrypt/orders",
          { plaintext },
          rootToken,
        );
        assert.equal(encrypted.status, 200);
        ciphertext = encrypted.body.data.ciphertext;
        const decrypted = await callServer(
          first.address,
          "POST",
          "transit/decrypt/orders",
          { ciphertext },
          rootToken,
        );
        assert.equal(decrypted.body.data.plaintext, plaintext);
      } finally {
        await first.stop();
      }
      assert.match(first.output(), /"storageLocation":"postgres:\/\/127\.0\.0\.1:\d+\//);
      assert.ok(!first.output().includes(password), "the server log shows the password");

      // Second start, with another data directory: everything needed is in
      // PostgreSQL. The URL comes from --storage.
      const second = await startServerProcess([
        "--data-dir",
        secondDataDir,
        "--storage",
        url,
        "--log-level",
        "warn",
      ]);
      try {
        const sealed = await callServer(second.address, "GET", "sys/seal-status");
        assert.equal(sealed.body.initialized, true);
        assert.equal(sealed.body.sealed, true);
        await unseal(second.address, shares.slice(1, 3));
        const decrypted = await callServer(
          second.address,
          "POST",
          "transit/decrypt/orders",
          { ciphertext },
          rootToken,
        );
        assert.equal(decrypted.status, 200, JSON.stringify(decrypted.body));
        assert.equal(decrypted.body.data.plaintext, plaintext);
      } finally {
        await second.stop();
      }
      assert.ok(!second.output().includes(password), "the server log shows the password");
    });

    it("unreachable storage stops the server", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "keyward-pg-server-"));
      dataDirs.push(dataDir);
      const url = new URL(server.url);
      url.port = "1";
      url.password = "never-printed-7d2e";
      await assert.rejects(
        startServerProcess(["--data-dir", dataDir, "--storage", url.toString()]),
        (error) => {
          assert.match(String(error), /failed to connect to postgres:\/\/127\.0\.0\.1:1\//);
          assert.ok(!String(error).includes("never-printed-7d2e"));
          return true;
        },
      );
    });
  });
});
