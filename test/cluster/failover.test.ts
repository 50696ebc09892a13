import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { cli } from "../helpers/server-process.ts";
import {
  type Acknowledged,
  newAcknowledged,
  RetryingClient,
  runCrypto,
  runWriter,
  sumMetric,
} from "./load.ts";
import { call, ROOT_TOKEN, TestCluster, timeUntil } from "./nodes.ts";

const NODE_IDS = ["node-a", "node-b", "node-c"];
/** The scheduler tick of every node, short so that job runs show in the metrics within a second. */
const JOB_INTERVAL_MS = 200;
/** How long another node may take to lead after the leader is killed. */
const TAKEOVER_LIMIT_MS = 15_000;
/** The window in which job runs are counted on each node, in milliseconds. */
const JOB_WINDOW_MS = 2_000;
/** Load before the kill and after the takeover, in milliseconds. */
const LOAD_BEFORE_KILL_MS = 3_000;
const LOAD_AFTER_TAKEOVER_MS = 3_000;
/** The store audit device this test enables beside the built-in one. */
const AUDIT_DEVICE = "failover";
const SHARED_KEY = "failover-shared";

/** Requests in flight at once while the acknowledged writes are read back. */
const CHECK_CONCURRENCY = 8;

const sleep = (milliseconds: number) => new Promise((resolve) => setTimeout(resolve, milliseconds));

/** Runs `check` on every item, at most `limit` at a time. */
async function checkAll<T>(items: readonly T[], limit: number, check: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await check(item);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/** Job runs and the leader gauge of one node, from its metrics. */
interface JobMetrics {
  successes: number;
  failures: number;
  leader: number;
}

describe("leader failover under load", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  let cluster: TestCluster;
  const acknowledged: Acknowledged = newAcknowledged();
  const clients: RetryingClient[] = [];
  let killed = "";
  let survivors: string[] = [];
  let newLeader = "";

  const jobMetrics = async (nodeId: string): Promise<JobMetrics> => {
    const response = await fetch(`${cluster.node(nodeId).address}/v1/sys/metrics`, {
      headers: { "x-vault-token": ROOT_TOKEN },
    });
    assert.equal(response.status, 200, `metrics of ${nodeId}`);
    const text = await response.text();
    return {
      successes: sumMetric(text, "keyward_job_runs_total", 'outcome="success"'),
      failures: sumMetric(text, "keyward_job_runs_total", 'outcome="failure"'),
      leader: sumMetric(text, "keyward_cluster_leader"),
    };
  };

  /** Returns each node's job metrics at the start and at the end of a window of JOB_WINDOW_MS. */
  const jobWindow = async (nodeIds: string[]) => {
    const first = await Promise.all(nodeIds.map(jobMetrics));
    await sleep(JOB_WINDOW_MS);
    const last = await Promise.all(nodeIds.map(jobMetrics));
    return nodeIds.map((nodeId, index) => ({
      nodeId,
      first: first[index] as JobMetrics,
      last: last[index] as JobMetrics,
    }));
  };

  const leaderOf = async (nodeId: string) => {
    const { body } = await call(cluster.node(nodeId), "GET", "sys/leader");
    return body as { is_self: boolean; leader_node_id: string };
  };

  before(async () => {
    postgres = await startPostgres();
    cluster = new TestCluster(postgres.url, ["--job-interval-ms", String(JOB_INTERVAL_MS)]);
    for (const nodeId of NODE_IDS) await cluster.start(nodeId);
    const listed = await timeUntil(async () => {
      const { body } = await call(cluster.node("node-a"), "GET", "sys/ha-status");
      const nodes = body.nodes as { up: boolean }[];
      return nodes.length === NODE_IDS.length && nodes.every((node) => node.up);
    }, 15_000);
    assert.ok(listed !== undefined, "node-a never listed all three nodes as up");

    const a = cluster.node("node-a");
    const enabled = await call(a, "PUT", `sys/audit/${AUDIT_DEVICE}`, {
      type: "store",
      options: { checkpoint_interval: "25" },
    });
    assert.equal(enabled.status, 204, JSON.stringify(enabled.body));
    assert.equal((await call(a, "POST", `transit/keys/${SHARED_KEY}`)).status, 200);
  });

  after(async () => {
    for (const client of clients) client.close();
    await cluster?.stop();
    await postgres?.stop();
  });

  it("runs jobs on the leader only", async () => {
    const { leader_node_id: leader } = await leaderOf("node-a");
    assert.ok(NODE_IDS.includes(leader), `sys/leader names ${leader}`);
    const window = await jobWindow(NODE_IDS);
    for (const { nodeId, first, last } of window) {
      console.log(
        `# ${nodeId}: ${first.successes} -> ${last.successes} job runs, leader gauge ${last.leader}`,
      );
      if (nodeId === leader) {
        assert.ok(last.successes > first.successes, `the leader ${nodeId} ran no job`);
        assert.equal(last.leader, 1, `the leader gauge of ${nodeId}`);
      } else {
        assert.equal(last.successes, 0, `${nodeId} ran jobs while not leading`);
        assert.equal(last.leader, 0, `the leader gauge of ${nodeId}`);
      }
      assert.equal(last.failures, 0, `failed job runs on ${nodeId}`);
    }
  });

  it("elects a new leader under load", async () => {
    const addresses = NODE_IDS.map((nodeId) => cluster.node(nodeId).address);
    let stopped = false;
    const loops: Promise<void>[] = [];
    for (let index = 0; index < 2; index++) {
      const writer = new RetryingClient(addresses, ROOT_TOKEN, index);
      const crypto = new RetryingClient(addresses, ROOT_TOKEN, index + 1);
      clients.push(writer, crypto);
      loops.push(runWriter(writer, `writer${index}`, acknowledged, () => stopped));
      loops.push(runCrypto(crypto, SHARED_KEY, `crypto${index}`, acknowledged, () => stopped));
    }

    try {
      await sleep(LOAD_BEFORE_KILL_MS);
      killed = (await leaderOf("node-a")).leader_node_id;
      survivors = NODE_IDS.filter((nodeId) => nodeId !== killed);
      const beforeKill = acknowledged.operations;
      await cluster.node(killed).stop("SIGKILL");

      const takeover = await timeUntil(async () => {
        for (const nodeId of survivors) {
          if ((await leaderOf(nodeId)).is_self) {
            newLeader = nodeId;
            return true;
          }
        }
        return false;
      }, TAKEOVER_LIMIT_MS);
      console.log(
        `# killed leader ${killed} after ${beforeKill} operations; ${newLeader} took over after ${takeover} ms`,
      );
      assert.ok(takeover !== undefined, `no survivor led within ${TAKEOVER_LIMIT_MS} ms`);
      const other = survivors.find((nodeId) => nodeId !== newLeader) as string;
      const seen = await timeUntil(
        async () => (await leaderOf(other)).leader_node_id === newLeader,
        TAKEOVER_LIMIT_MS,
      );
      console.log(`# ${other} named ${newLeader} as leader ${seen} ms later`);
      assert.ok(seen !== undefined, `${other} never named ${newLeader} as leader`);

      await sleep(LOAD_AFTER_TAKEOVER_MS);
    } finally {
      stopped = true;
      await Promise.all(loops);
    }

    const retried = clients.reduce((sum, client) => sum + client.retried, 0);
    console.log(
      `# ${acknowledged.operations} operations acknowledged, ${retried} sent again after a connection error, ` +
        `${acknowledged.createsFoundExisting} creates found their key from the first attempt, ` +
        `${acknowledged.failures.length} failed`,
    );
    assert.deepEqual(acknowledged.failures, []);
    assert.ok(acknowledged.keys.length > 0, "no key was created");
    assert.ok(retried > 0, "no request hit the killed node, so nothing was retried");
  });

  it("keeps every acknowledged write", async () => {
    assert.ok(survivors.length === 2, "the failover step did not run");
    for (const nodeId of survivors) {
      const node = cluster.node(nodeId);
      await checkAll(acknowledged.keys, CHECK_CONCURRENCY, async (key) => {
        const read = await call(node, "GET", `transit/keys/${key}`);
        assert.equal(read.status, 200, `${nodeId} lost key ${key}`);
      });
      await checkAll([...acknowledged.policies], CHECK_CONCURRENCY, async ([name, policy]) => {
        const read = await call(node, "GET", `sys/policies/acl/${name}`);
        assert.equal(read.status, 200, `${nodeId} lost policy ${name}`);
        assert.equal((read.body.data as { policy: string }).policy, policy);
      });
      await checkAll(acknowledged.ciphertexts, CHECK_CONCURRENCY, async (item) => {
        const { key, ciphertext, plaintext } = item;
        const decrypted = await call(node, "POST", `transit/decrypt/${key}`, { ciphertext });
        assert.equal(decrypted.status, 200, `${nodeId} cannot decrypt ${ciphertext}`);
        assert.equal((decrypted.body.data as { plaintext: string }).plaintext, plaintext);
      });
    }
    console.log(
      `# checked on ${survivors.join(" and ")}: ${acknowledged.keys.length} keys, ` +
        `${acknowledged.policies.size} policies, ${acknowledged.ciphertexts.length} ciphertexts`,
    );
  });

  it("runs jobs on the new leader only", async () => {
    assert.ok(newLeader !== "", "the failover step did not run");
    const window = await jobWindow(survivors);
    for (const { nodeId, first, last } of window) {
      console.log(
        `# ${nodeId}: ${first.successes} -> ${last.successes} job runs, leader gauge ${last.leader}`,
      );
      if (nodeId === newLeader) {
        assert.ok(last.successes > first.successes, `the new leader ${nodeId} ran no job`);
        assert.equal(last.leader, 1, `the leader gauge of ${nodeId}`);
      } else {
        assert.equal(last.successes, first.successes, `${nodeId} ran jobs while not leading`);
        assert.equal(last.leader, 0, `the leader gauge of ${nodeId}`);
      }
      assert.equal(last.failures, 0, `failed job runs on ${nodeId}`);
    }
  });

  it("verifies every node's audit chain", async () => {
    assert.ok(survivors.length === 2, "the failover step did not run");
    const node = cluster.node(survivors[0] as string);
    const devices = await call(node, "GET", "sys/audit");
    const storeDevices = Object.entries(devices.body.data as Record<string, { type: string }>)
      .filter(([, device]) => device.type === "store")
      .map(([path]) => path.replace(/\/$/, ""));
    assert.ok(storeDevices.includes(AUDIT_DEVICE), `store devices: ${storeDevices.join(", ")}`);

    for (const device of storeDevices) {
      const { status, body } = await call(node, "GET", `sys/audit/verify?device=${device}`);
      assert.equal(status, 200, JSON.stringify(body));
      const result = body.data as {
        ok: boolean;
        signaturesChecked: boolean;
        nodes: { node: string | null; ok: boolean; records: number; checkpoints: number }[];
      };
      for (const chain of result.nodes) {
        console.log(
          `# device ${device}, node ${chain.node}: ${chain.records} records, ${chain.checkpoints} checkpoints, ok ${chain.ok}`,
        );
      }
      assert.equal(result.ok, true, `device ${device}: ${JSON.stringify(body.data)}`);
      assert.equal(result.signaturesChecked, true);
      for (const nodeId of NODE_IDS) {
        const chain = result.nodes.find((entry) => entry.node === nodeId);
        assert.ok(chain !== undefined, `device ${device} has no chain of ${nodeId}`);
        assert.ok(chain.records > 0, `the chain of ${nodeId} on ${device} is empty`);
      }
    }

    const verified = await cli([
      "audit",
      "verify",
      "--store",
      "--device",
      AUDIT_DEVICE,
      "--format",
      "json",
      "--address",
      node.address,
      "--token",
      ROOT_TOKEN,
    ]);
    assert.equal(verified.status, 0, verified.stderr);
    const report = JSON.parse(verified.stdout) as { ok: boolean; nodes: { node: string }[] };
    assert.equal(report.ok, true);
    assert.deepEqual(report.nodes.map((chain) => chain.node).sort(), NODE_IDS);
  });
});
