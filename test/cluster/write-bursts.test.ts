import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { postgresSkipReason } from "../helpers/postgres.ts";
import type { ServerProcess } from "../helpers/server-process.ts";
import { call, mountPkiOnBoth, startTwoNodes, type TwoNodes, timeUntil } from "./nodes.ts";

// Two nodes on one PostgreSQL receive, all at once, creations of objects
// with different names. The transactions touch different keys, but
// PostgreSQL's serializable reads lock whole index pages, so they still
// conflict and are retried. No client may see a 503 for such a burst.

/** Concurrent creations sent to each node in one burst. */
const PER_NODE = 40;
/** How soon another node must use a change, as the cluster promises. */
const PROPAGATION_LIMIT_MS = 1_000;

type Reply = Awaited<ReturnType<typeof call>>;

describe("bursts of different names across nodes", { skip: postgresSkipReason() }, () => {
  let twoNodes: TwoNodes;
  let nodes: ServerProcess[];

  before(async () => {
    twoNodes = await startTwoNodes();
    nodes = twoNodes.nodes;
    await mountPkiOnBoth(nodes, PROPAGATION_LIMIT_MS);
  });
  after(async () => {
    await twoNodes?.stop();
  });

  /**
   * Sends `2 * PER_NODE` requests at once, request `i` to node-a when `i`
   * is even and to node-b otherwise, and checks that each one got
   * `status`.
   */
  async function burst(
    status: number,
    send: (node: ServerProcess, i: number) => Promise<Reply>,
  ): Promise<Reply[]> {
    const replies = await Promise.all(
      Array.from({ length: 2 * PER_NODE }, (_, i) => send(nodes[i % 2]!, i)),
    );
    const failed = replies
      .map((reply, i) => ({ i, status: reply.status, code: reply.body.code }))
      .filter((reply) => reply.status !== status);
    assert.deepEqual(failed, []);
    return replies;
  }

  /** Waits until every node lists each of `expected` under `path`. */
  async function assertListed(path: string, expected: readonly string[]): Promise<void> {
    for (const node of nodes) {
      let missing: string[] = [];
      const delay = await timeUntil(async () => {
        const listed = await call(node, "GET", `${path}?list=true`);
        const keys = ((listed.body.data as { keys?: string[] } | undefined)?.keys ??
          []) as string[];
        missing = expected.filter((name) => !keys.includes(name));
        return missing.length === 0;
      }, PROPAGATION_LIMIT_MS);
      assert.ok(delay !== undefined, `${node.address} does not list ${missing.join(", ")}`);
    }
  }

  it("creates devices of different names", async () => {
    const names = Array.from({ length: 2 * PER_NODE }, (_, i) => `burst-device-${i}`);
    await burst(200, (node, i) => call(node, "POST", `devices/registry/${names[i]}`, {}));
    await assertListed("devices/registry", names);
  });

  it("creates transit keys of different names", async () => {
    const names = Array.from({ length: 2 * PER_NODE }, (_, i) => `burst-key-${i}`);
    await burst(200, (node, i) => call(node, "POST", `transit/keys/${names[i]}`, {}));
    await assertListed("transit/keys", names);
  });

  it("creates PKI issuers and keys of different names", async () => {
    const replies = await burst(200, (node, i) =>
      call(node, "POST", "pki/root/generate/internal", {
        common_name: `burst root ${i}`,
        key_type: "ec",
        ttl: "24h",
        issuer_name: `burst-issuer-${i}`,
        key_name: `burst-issuer-key-${i}`,
      }),
    );
    const ids = replies.map((reply) =>
      String((reply.body.data as { issuer_id: string }).issuer_id),
    );
    assert.equal(new Set(ids).size, ids.length);
    await assertListed("pki/issuers", ids);
  });

  it("writes ACL policies of different names", async () => {
    const names = Array.from({ length: 2 * PER_NODE }, (_, i) => `burst-policy-${i}`);
    const policy = 'path "secret/burst/*" { capabilities = ["read"] }';
    await burst(204, (node, i) => call(node, "PUT", `sys/policies/acl/${names[i]}`, { policy }));
    await assertListed("sys/policies/acl", names);
  });

  it("creates tokens", async () => {
    const replies = await burst(200, (node) =>
      call(node, "POST", "auth/token/create", { policies: ["default"], ttl: "1h" }),
    );
    const tokens = replies.map(
      (reply) => (reply.body.auth as { client_token: string }).client_token,
    );
    assert.equal(new Set(tokens).size, tokens.length);
    // Each token works on the node that did not create it.
    const lookups = await Promise.all(
      tokens.map((token, i) =>
        call(nodes[(i + 1) % 2]!, "GET", "auth/token/lookup-self", undefined, token),
      ),
    );
    for (const lookup of lookups) assert.equal(lookup.status, 200, JSON.stringify(lookup.body));
  });
});
