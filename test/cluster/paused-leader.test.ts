import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { STALE_LEADER_MS } from "../../src/cluster/cluster.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { startDevServer } from "../helpers/server-process.ts";
import { sumMetric } from "./load.ts";
import { call, ROOT_TOKEN, TestCluster, timeUntil } from "./nodes.ts";

/** Job runs counted in one node's metrics. */
async function jobRuns(cluster: TestCluster, nodeId: string): Promise<number> {
  const response = await fetch(`${cluster.node(nodeId).address}/v1/sys/metrics`, {
    headers: { "x-vault-token": ROOT_TOKEN },
  });
  return sumMetric(await response.text(), "keyward_job_runs_total");
}

async function leaderSeenBy(cluster: TestCluster, nodeId: string): Promise<string> {
  const { body } = await call(cluster.node(nodeId), "GET", "sys/leader");
  return String(body.leader_node_id);
}

describe("paused leader", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  let cluster: TestCluster;

  before(async () => {
    postgres = await startPostgres();
    cluster = new TestCluster(postgres.url, ["--job-interval-ms", "200"]);
    await cluster.start("node-a");
    await cluster.start("node-b");
  });
  after(async () => {
    for (const node of cluster?.nodes.values() ?? []) node.child.kill("SIGCONT");
    await cluster?.stop();
    await postgres?.stop();
  });

  it("refuses a second node with one id", async () => {
    await assert.rejects(
      startDevServer({
        dataDir: cluster.node("node-a").dataDir,
        args: ["--storage", postgres.url, "--node-id", "node-b"],
      }),
      /node id "node-b" is in use by another running node/,
    );
  });

  it("replaces a leader that stops", async () => {
    const settled = await timeUntil(
      async () => (await leaderSeenBy(cluster, "node-b")) !== "",
      10_000,
    );
    assert.ok(settled !== undefined, "no leader was elected");
    const leader = await leaderSeenBy(cluster, "node-b");
    const other = leader === "node-a" ? "node-b" : "node-a";

    cluster.node(leader).child.kill("SIGSTOP");
    const takeover = await timeUntil(
      async () => (await leaderSeenBy(cluster, other)) === other,
      STALE_LEADER_MS + 10_000,
    );
    console.log(`# ${other} took over from the paused ${leader} after ${takeover} ms`);
    assert.ok(takeover !== undefined, `${other} never took over`);

    const runsBefore = await jobRuns(cluster, other);
    cluster.node(leader).child.kill("SIGCONT");
    // The resumed node finds its lock gone before any job runs, and stays a follower.
    const stepped = await timeUntil(async () => {
      const { body } = await call(cluster.node(leader), "GET", "sys/health");
      return body.leader === false;
    }, 10_000);
    assert.ok(stepped !== undefined, `${leader} still thinks it leads`);
    const resumedRuns = await jobRuns(cluster, leader);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await jobRuns(cluster, leader), resumedRuns, `${leader} kept running jobs`);
    assert.ok((await jobRuns(cluster, other)) > runsBefore, `${other} stopped running jobs`);
    assert.equal(await leaderSeenBy(cluster, leader), other);
  });
});
