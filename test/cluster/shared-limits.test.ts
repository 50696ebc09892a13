import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import type { ServerProcess } from "../helpers/server-process.ts";
import { call, TestCluster } from "./nodes.ts";

// Limits that must hold across nodes (use counts), and a node's survival
// when PostgreSQL ends its busy sessions.

const PLAINTEXT = Buffer.from("defect").toString("base64");

/** Counts the 2xx responses among `count` concurrent requests spread over `nodes`. */
async function countSuccesses(
  nodes: ServerProcess[],
  count: number,
  send: (node: ServerProcess) => Promise<{ status: number }>,
): Promise<number> {
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => send(nodes[i % nodes.length] as ServerProcess)),
  );
  return results.filter((result) => result.status >= 200 && result.status < 300).length;
}

describe("limits across nodes", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  let cluster: TestCluster;

  before(async () => {
    postgres = await startPostgres();
    cluster = new TestCluster(postgres.url);
    await cluster.start("node-a");
    await cluster.start("node-b");
    await cluster.start("node-c");
  });
  after(async () => {
    await cluster?.stop();
    await postgres?.stop();
  });

  it("token num_uses limit across nodes", async () => {
    const a = cluster.node("node-a");
    assert.equal((await call(a, "POST", "transit/keys/uses")).status, 200);
    const policy = 'path "transit/encrypt/uses" { capabilities = ["update"] }';
    assert.equal((await call(a, "PUT", "sys/policies/acl/uses", { policy })).status, 204);
    const nodes = [...cluster.nodes.values()];
    let extraUses = 0;
    for (let round = 0; round < 5; round++) {
      const created = await call(a, "POST", "auth/token/create", {
        policies: ["uses"],
        num_uses: 1,
      });
      const token = (created.body.auth as { client_token: string }).client_token;
      // Let every node see the new token first, so only the race remains.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const successes = await countSuccesses(nodes, 3, (node) =>
        call(node, "POST", "transit/encrypt/uses", { plaintext: PLAINTEXT }, token),
      );
      extraUses += successes - 1;
    }
    assert.equal(extraUses, 0, "a token with num_uses=1 was used more than once");
  });

  it("single-use AppRole secret ID across nodes", async () => {
    const a = cluster.node("node-a");
    await call(a, "POST", "sys/auth/approle", { type: "approle" });
    const role = await call(a, "POST", "auth/approle/role/once", { secret_id_num_uses: 1 });
    assert.ok(role.status < 300, JSON.stringify(role.body));
    const roleId = (
      (await call(a, "GET", "auth/approle/role/once/role-id")).body.data as {
        role_id: string;
      }
    ).role_id;
    const nodes = [...cluster.nodes.values()];
    let extraLogins = 0;
    for (let round = 0; round < 5; round++) {
      const issued = await call(a, "POST", "auth/approle/role/once/secret-id");
      const secretId = (issued.body.data as { secret_id: string }).secret_id;
      await new Promise((resolve) => setTimeout(resolve, 300));
      const successes = await countSuccesses(nodes, 3, (node) =>
        call(node, "POST", "auth/approle/login", { role_id: roleId, secret_id: secretId }, ""),
      );
      extraLogins += successes - 1;
    }
    assert.equal(extraLogins, 0, "a secret ID with secret_id_num_uses=1 logged in more than once");
  });

  it("survives a terminated busy connection", async () => {
    const a = cluster.node("node-a");
    assert.equal((await call(a, "POST", "transit/keys/busy")).status, 200);
    let running = true;
    const load = (async () => {
      while (running) {
        await call(a, "POST", "transit/keys/busy/rotate").catch(() => undefined);
        await call(a, "POST", "transit/encrypt/busy", { plaintext: PLAINTEXT }).catch(
          () => undefined,
        );
      }
    })();
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      // Ends the pool sessions that are in use, as a database restart or
      // failover does; the coordination sessions are left alone.
      for (let attempt = 0; attempt < 20 && a.child.exitCode === null; attempt++) {
        await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where datname = current_database() and application_name = 'keyward'
              and state <> 'idle' and pid <> pg_backend_pid()`,
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      running = false;
      await admin.end();
      await load;
    }
    assert.equal(
      a.child.exitCode,
      null,
      `node-a exited after its database connection was terminated:\n${a.output().slice(-1500)}`,
    );
    const health = await call(a, "GET", "sys/health");
    assert.equal(health.status, 200);
  });
});
