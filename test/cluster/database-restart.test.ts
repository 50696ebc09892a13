import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isDatabaseUnavailable } from "../../src/storage/postgres/unavailable.ts";
import { requirePeer } from "../helpers/peers.ts";
import {
  findPostgresBin,
  type PostgresServer,
  postgresSkipReason,
  startPostgres,
} from "../helpers/postgres.ts";
import { call, TestCluster, timeUntil } from "./nodes.ts";

// A PostgreSQL restart under running nodes: requests meanwhile fail with a
// retryable 503, the nodes recover without a restart of their own, and no
// acknowledged write is lost.

/** How soon another node must use a change, as docs/deployment.md promises. */
const PROPAGATION_LIMIT_MS = 1_000;
/** How long the nodes may take to serve again once the database is back. */
const RECOVERY_LIMIT_MS = 30_000;
const PLAINTEXT = Buffer.from("restart").toString("base64");

/** Runs pg_ctl on the private server's data folder, as user postgres when this process is root. */
function pgCtl(postgres: PostgresServer, args: string[]): void {
  const bin = findPostgresBin();
  assert.ok(bin !== undefined, "no PostgreSQL binaries found");
  assert.ok(postgres.socketDir !== undefined, "the server has no data folder of its own");
  const dataDir = join(postgres.socketDir, "data");
  const program = join(bin, "pg_ctl");
  const command = process.getuid?.() === 0 ? "runuser" : program;
  const commandArgs = [...(process.getuid?.() === 0 ? ["-u", "postgres", "--", program] : [])];
  const result = spawnSync(command, [...commandArgs, ...args, "-D", dataDir, "-w"], {
    encoding: "utf8",
  });
  assert.equal(result.status, 0, `pg_ctl ${args[0]} failed:\n${result.stdout}\n${result.stderr}`);
}

/**
 * Starts the private server again with the options of its first start,
 * which PostgreSQL keeps in `postmaster.opts` as the program followed by
 * each argument in double quotes.
 */
function restartPostgres(postgres: PostgresServer): void {
  assert.ok(postgres.socketDir !== undefined);
  const dataDir = join(postgres.socketDir, "data");
  const opts = readFileSync(join(dataDir, "postmaster.opts"), "utf8");
  const words = [...opts.matchAll(/"([^"]*)"/g)].map((match) => match[1] as string);
  const dataFlag = words.indexOf("-D");
  if (dataFlag !== -1) words.splice(dataFlag, 2);
  pgCtl(postgres, ["start", "-l", join(postgres.socketDir, "restart.log"), "-o", words.join(" ")]);
}

describe("postgresql restart under running nodes", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  let cluster: TestCluster;

  before(async () => {
    postgres = await startPostgres();
    cluster = new TestCluster(postgres.url);
    await cluster.start("node-a");
    await cluster.start("node-b");
  });
  after(async () => {
    await cluster?.stop();
    await postgres?.stop();
  });

  it("answers 503 while stopped, then recovers", async (t) => {
    if (!requirePeer(t, "pg_ctl")) return;
    if (!postgres.private) {
      t.skip("needs a private server to stop; KEYWARD_TEST_POSTGRES_URL is set");
      return;
    }
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    assert.equal((await call(a, "POST", "transit/keys/restart")).status, 200);
    const policy = 'path "transit/encrypt/restart" { capabilities = ["update"] }';
    assert.equal((await call(a, "PUT", "sys/policies/acl/before", { policy })).status, 204);
    const encrypted = await call(b, "POST", "transit/encrypt/restart", { plaintext: PLAINTEXT });
    assert.equal(encrypted.status, 200);
    const ciphertext = (encrypted.body.data as { ciphertext: string }).ciphertext;

    pgCtl(postgres, ["stop", "-m", "fast"]);
    try {
      for (const node of [a, b]) {
        const encrypt = await call(node, "POST", "transit/encrypt/restart", {
          plaintext: PLAINTEXT,
        });
        assert.equal(encrypt.status, 503, JSON.stringify(encrypt.body));
        assert.equal(encrypt.body.code, "storage_unavailable");
        const write = await call(node, "PUT", "sys/policies/acl/during", { policy });
        assert.equal(write.status, 503, JSON.stringify(write.body));
        assert.equal(write.body.code, "storage_unavailable");
      }
    } finally {
      restartPostgres(postgres);
    }

    for (const node of [a, b]) {
      const served = await timeUntil(async () => {
        const result = await call(node, "POST", "transit/encrypt/restart", {
          plaintext: PLAINTEXT,
        });
        return result.status === 200;
      }, RECOVERY_LIMIT_MS);
      assert.ok(served !== undefined, `a node never served again:\n${node.output().slice(-2000)}`);
      assert.equal(node.child.exitCode, null);
      assert.equal((await call(node, "GET", "sys/policies/acl/before")).status, 200);
      const decrypted = await call(node, "POST", "transit/decrypt/restart", { ciphertext });
      assert.equal(decrypted.status, 200);
      assert.equal((decrypted.body.data as { plaintext: string }).plaintext, PLAINTEXT);
    }

    // sys/leader queries through node-b's coordination session, so a
    // response naming a leader shows that the session, and with it the
    // change feed, is open again.
    const coordinated = await timeUntil(async () => {
      const { body } = await call(b, "GET", "sys/leader");
      return typeof body.leader_node_id === "string" && body.leader_node_id !== "";
    }, RECOVERY_LIMIT_MS);
    assert.ok(coordinated !== undefined, "node-b never named a leader again");
    assert.equal((await call(a, "POST", "transit/keys/restart/rotate")).status, 200);
    const delay = await timeUntil(async () => {
      const { body } = await call(b, "POST", "transit/encrypt/restart", { plaintext: PLAINTEXT });
      return String((body.data as { ciphertext?: string }).ciphertext).startsWith("keyward:v2:");
    }, PROPAGATION_LIMIT_MS);
    assert.ok(delay !== undefined, "node-b kept encrypting with version 1 after the restart");
  });
});

describe("database unavailability", () => {
  it("classifies driver errors", () => {
    const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
    assert.ok(isDatabaseUnavailable(withCode("connect ECONNREFUSED", "ECONNREFUSED")));
    assert.ok(isDatabaseUnavailable(withCode("the database system is shutting down", "57P03")));
    assert.ok(isDatabaseUnavailable(withCode("terminating connection", "57P01")));
    assert.ok(isDatabaseUnavailable(withCode("connection failure", "08006")));
    assert.ok(isDatabaseUnavailable(new Error("Connection terminated unexpectedly")));
    const timeout = new Error("Connection terminated due to connection timeout", {
      cause: new Error("Connection terminated unexpectedly"),
    });
    assert.ok(isDatabaseUnavailable(timeout));
    assert.equal(isDatabaseUnavailable(withCode("could not serialize access", "40001")), false);
    assert.equal(isDatabaseUnavailable(withCode("syntax error", "42601")), false);
    assert.equal(isDatabaseUnavailable(withCode("password authentication failed", "28P01")), false);
    assert.equal(isDatabaseUnavailable(new Error("something else")), false);
    assert.equal(isDatabaseUnavailable("ECONNREFUSED"), false);
  });
});
