import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { call, TestCluster, timeUntil } from "./nodes.ts";

/** How soon another node must use a change, as the cluster promises. */
const PROPAGATION_LIMIT_MS = 1_000;

describe("several nodes on one postgresql", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  let cluster: TestCluster;

  before(async () => {
    postgres = await startPostgres();
    cluster = new TestCluster(postgres.url, ["--job-interval-ms", "500"]);
    await cluster.start("node-a");
    await cluster.start("node-b");
  });
  after(async () => {
    await cluster?.stop();
    await postgres?.stop();
  });

  it("reports both nodes and one leader", async () => {
    const seen = await timeUntil(async () => {
      const { body } = await call(cluster.node("node-a"), "GET", "sys/ha-status");
      const nodes = body.nodes as { node_id: string; up: boolean }[];
      return nodes.length === 2 && nodes.every((node) => node.up);
    }, 10_000);
    assert.ok(seen !== undefined, "node-a never listed both nodes");
    const { body } = await call(cluster.node("node-b"), "GET", "sys/ha-status");
    const nodes = body.nodes as { node_id: string; leader: boolean; self: boolean }[];
    assert.deepEqual(nodes.map((node) => node.node_id).sort(), ["node-a", "node-b"]);
    assert.equal(nodes.filter((node) => node.leader).length, 1);
    assert.equal(nodes.find((node) => node.self)?.node_id, "node-b");

    const healthA = await call(cluster.node("node-a"), "GET", "sys/health");
    const healthB = await call(cluster.node("node-b"), "GET", "sys/health");
    assert.equal(healthA.status, 200);
    assert.equal(healthB.status, 200);
    assert.equal(healthA.body.ha_enabled, true);
    assert.equal(healthA.body.node_id, "node-a");
    assert.notEqual(healthA.body.leader, healthB.body.leader);
  });

  it("uses a rotation made elsewhere", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    assert.equal((await call(a, "POST", "transit/keys/shared")).status, 200);
    const plaintext = Buffer.from("hello").toString("base64");
    const first = await call(b, "POST", "transit/encrypt/shared", { plaintext });
    assert.match(String((first.body.data as { ciphertext: string }).ciphertext), /^keyward:v1:/);

    assert.equal((await call(a, "POST", "transit/keys/shared/rotate")).status, 200);
    const delay = await timeUntil(async () => {
      const { body } = await call(b, "POST", "transit/encrypt/shared", { plaintext });
      return String((body.data as { ciphertext: string }).ciphertext).startsWith("keyward:v2:");
    }, PROPAGATION_LIMIT_MS);
    console.log(`# rotation seen by the other node after ${delay} ms`);
    assert.ok(delay !== undefined, "node-b kept encrypting with version 1");
  });

  it("loses no concurrent rotation", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const created = await call(a, "POST", "transit/keys/contended");
    // A failure names the error and shows the end of the node's log.
    assert.equal(
      created.status,
      200,
      `${JSON.stringify(created.body)}\n${a.output().slice(-3000)}`,
    );
    const rotations = Array.from({ length: 10 }, (_, i) =>
      call(i % 2 === 0 ? a : b, "POST", "transit/keys/contended/rotate"),
    );
    for (const result of await Promise.all(rotations)) {
      // A failure names the error and shows the end of both nodes' logs.
      assert.equal(
        result.status,
        200,
        `${JSON.stringify(result.body)}\nnode-a:\n${a.output().slice(-3000)}\nnode-b:\n${b.output().slice(-3000)}`,
      );
    }
    // A node may serve its cached copy until it applies the other node's
    // last rotation, so each node gets the propagation limit to show all 11.
    for (const nodeId of ["node-a", "node-b"]) {
      let latest: number | undefined;
      const delay = await timeUntil(async () => {
        const { body } = await call(cluster.node(nodeId), "GET", "transit/keys/contended");
        latest = (body.data as { latest_version: number }).latest_version;
        return latest === 11;
      }, PROPAGATION_LIMIT_MS);
      assert.ok(delay !== undefined, `${nodeId} kept showing latest_version ${latest}, not 11`);
    }
  });

  it("keeps one key created on both nodes", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const plaintext = Buffer.from("same key").toString("base64");
    for (let round = 0; round < 5; round++) {
      const name = `raced-${round}`;
      // Encrypt creates a missing key; both nodes race to create it.
      const [fromA, fromB] = await Promise.all([
        call(a, "POST", `transit/encrypt/${name}`, { plaintext }),
        call(b, "POST", `transit/encrypt/${name}`, { plaintext }),
      ]);
      for (const [node, result] of [
        [b, fromA],
        [a, fromB],
      ] as const) {
        const ciphertext = (result.body.data as { ciphertext: string }).ciphertext;
        const decrypted = await call(node, "POST", `transit/decrypt/${name}`, { ciphertext });
        assert.equal(decrypted.status, 200, JSON.stringify(decrypted.body));
        assert.equal((decrypted.body.data as { plaintext: string }).plaintext, plaintext);
      }
    }
  });

  it("enforces a policy change made elsewhere", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const allow = 'path "transit/encrypt/shared" { capabilities = ["update"] }';
    assert.equal(
      (await call(a, "PUT", "sys/policies/acl/encrypter", { policy: allow })).status,
      204,
    );
    const created = await call(a, "POST", "auth/token/create", { policies: ["encrypter"] });
    const token = (created.body.auth as { client_token: string }).client_token;
    const plaintext = Buffer.from("x").toString("base64");
    const encrypt = () => call(b, "POST", "transit/encrypt/shared", { plaintext }, token);
    assert.equal((await encrypt()).status, 200);

    const deny = 'path "transit/encrypt/shared" { capabilities = ["deny"] }';
    assert.equal(
      (await call(a, "PUT", "sys/policies/acl/encrypter", { policy: deny })).status,
      204,
    );
    const delay = await timeUntil(
      async () => (await encrypt()).status === 403,
      PROPAGATION_LIMIT_MS,
    );
    console.log(`# policy change seen by the other node after ${delay} ms`);
    assert.ok(delay !== undefined, "node-b still allowed the denied path");
  });

  it("rejects a token revoked elsewhere", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    const created = await call(a, "POST", "auth/token/create", { policies: ["default"] });
    const token = (created.body.auth as { client_token: string }).client_token;
    assert.equal((await call(b, "GET", "auth/token/lookup-self", undefined, token)).status, 200);
    assert.equal((await call(a, "POST", "auth/token/revoke", { token })).status, 204);
    const delay = await timeUntil(
      async () => (await call(b, "GET", "auth/token/lookup-self", undefined, token)).status === 403,
      PROPAGATION_LIMIT_MS,
    );
    console.log(`# revocation seen by the other node after ${delay} ms`);
    assert.ok(delay !== undefined, "node-b still accepted the revoked token");
  });

  it("serves a mount made elsewhere", async () => {
    const a = cluster.node("node-a");
    const b = cluster.node("node-b");
    assert.equal((await call(a, "POST", "sys/mounts/payments", { type: "transit" })).status, 204);
    const delay = await timeUntil(
      async () => (await call(b, "POST", "payments/keys/card")).status === 200,
      PROPAGATION_LIMIT_MS,
    );
    console.log(`# mount seen by the other node after ${delay} ms`);
    assert.ok(delay !== undefined, "node-b did not serve the new mount");
  });

  it("hands leadership over when the leader dies", async () => {
    const leaderOf = async (nodeId: string) => {
      const { body } = await call(cluster.node(nodeId), "GET", "sys/leader");
      return body as { is_self: boolean; leader_node_id: string };
    };
    const before = await leaderOf("node-a");
    const leader = before.leader_node_id;
    assert.ok(leader === "node-a" || leader === "node-b", `leader ${leader}`);
    const survivor = leader === "node-a" ? "node-b" : "node-a";
    await cluster.node(leader).stop("SIGKILL");
    const delay = await timeUntil(async () => (await leaderOf(survivor)).is_self, 15_000);
    console.log(`# ${survivor} took over after ${delay} ms`);
    assert.ok(delay !== undefined, `${survivor} did not take over`);
  });
});
