import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { postgresSkipReason } from "../helpers/postgres.ts";
import type { ServerProcess } from "../helpers/server-process.ts";
import { call, mountPkiOnBoth, startTwoNodes, type TwoNodes, timeUntil } from "./nodes.ts";

/** How soon another node must use a change, as the cluster promises. */
const PROPAGATION_LIMIT_MS = 1_000;

type Reply = Awaited<ReturnType<typeof call>>;

/** Returns `count` distinct spellings of `name` that differ only in the case of its letters. */
function caseVariants(name: string, count: number): string[] {
  const letters = [...name].flatMap((character, index) =>
    character.toLowerCase() === character.toUpperCase() ? [] : [index],
  );
  assert.ok(2 ** letters.length >= count, `"${name}" has too few letters for ${count} variants`);
  return Array.from({ length: count }, (_, variant) => {
    const characters = [...name.toLowerCase()];
    letters.forEach((index, bit) => {
      if ((variant >> bit) & 1) characters[index] = characters[index]!.toUpperCase();
    });
    return characters.join("");
  });
}

/**
 * Checks that exactly one of `replies` succeeded and that every other one
 * was rejected with 409 `already_exists` naming `field`, and returns the
 * successful reply.
 */
function onlyWinner(replies: Reply[], field: string, label: string): Reply {
  const summary = JSON.stringify(replies.map((reply) => [reply.status, reply.body.code]));
  const winners = replies.filter((reply) => reply.status === 200);
  assert.equal(winners.length, 1, `${label}: expected one success, got ${summary}`);
  for (const loser of replies.filter((reply) => reply.status !== 200)) {
    assert.equal(loser.status, 409, `${label}: ${JSON.stringify(loser.body)}`);
    assert.equal(loser.body.code, "already_exists", `${label}: ${JSON.stringify(loser.body)}`);
    assert.equal(loser.body.field, field, `${label}: ${JSON.stringify(loser.body)}`);
  }
  return winners[0]!;
}

function dataOf(reply: Reply): Record<string, unknown> {
  return reply.body.data as Record<string, unknown>;
}

// Two nodes on one PostgreSQL receive, at the same moment, many requests
// that give one name to different objects. Names are claimed in storage in
// the transaction that writes the object, so exactly one request per name
// must win, whichever node serves it.
describe("unique names across nodes", { skip: postgresSkipReason() }, () => {
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

  /** Sends request `i` of `count` to node-a when `i` is even and to node-b otherwise, all at once. */
  function fromBothNodes(count: number, send: (node: ServerProcess, i: number) => Promise<Reply>) {
    return Promise.all(Array.from({ length: count }, (_, i) => send(nodes[i % 2]!, i)));
  }

  /**
   * Sends `perName` requests for each of `names`, all at once, and returns
   * the replies grouped by name. The requests for one name alternate
   * between node-a and node-b. `i` numbers every request from 0.
   */
  function racePerName(
    names: readonly string[],
    perName: number,
    send: (node: ServerProcess, name: string, round: number, i: number) => Promise<Reply>,
  ): Promise<Reply[][]> {
    const groups = names.map((name, index) =>
      Array.from({ length: perName }, (_, round) =>
        send(nodes[round % 2]!, name, round, index * perName + round),
      ),
    );
    return Promise.all(groups.map((group) => Promise.all(group)));
  }

  /** Returns the issuers that node lists under `name`. */
  async function issuersNamed(node: ServerProcess, name: string): Promise<string[]> {
    const listed = await call(node, "GET", "pki/issuers?list=true");
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    const info = dataOf(listed).key_info as Record<string, { issuer_name: string }>;
    return Object.entries(info)
      .filter(([, issuer]) => issuer.issuer_name === name)
      .map(([id]) => id);
  }

  /** Waits until both nodes resolve issuer `name` to `id` and list no other issuer with that name. */
  async function assertOneIssuer(name: string, id: string): Promise<void> {
    for (const node of nodes) {
      let seen: unknown;
      const delay = await timeUntil(async () => {
        const read = await call(node, "GET", `pki/issuer/${name}`);
        seen = read.status === 200 ? dataOf(read).issuer_id : read.body;
        return seen === id;
      }, PROPAGATION_LIMIT_MS);
      assert.ok(delay !== undefined, `${node.address} resolved "${name}" to ${String(seen)}`);
      assert.deepEqual(await issuersNamed(node, name), [id]);
    }
  }

  it("gives each issuer name to one generated root", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `race-root-${i}`);
    const perName = 4;
    // Each request also names its key. A request whose issuer name is
    // taken must store no key, so its key name stays free.
    const keyName = (i: number) => `race-root-key-${i}`;
    const groups = await racePerName(names, perName, (node, name, _, i) =>
      call(node, "POST", "pki/root/generate/internal", {
        common_name: `root ${i}`,
        key_type: "ec",
        ttl: "24h",
        issuer_name: name,
        key_name: keyName(i),
      }),
    );
    for (const [index, name] of names.entries()) {
      const winner = onlyWinner(groups[index]!, "issuer_name", name);
      assert.equal(dataOf(winner).issuer_name, name);
      await assertOneIssuer(name, String(dataOf(winner).issuer_id));
    }

    const losers = groups.flat().flatMap((reply, i) => (reply.status === 200 ? [] : [keyName(i)]));
    const reused = await fromBothNodes(losers.length, (node, i) =>
      call(node, "POST", "pki/intermediate/generate/internal", {
        common_name: `reuse ${i}`,
        key_type: "ec",
        key_name: losers[i],
      }),
    );
    reused.forEach((reply, i) => {
      assert.equal(reply.status, 200, `key name ${losers[i]}: ${JSON.stringify(reply.body)}`);
    });
  });

  it("gives each issuer name to one rename", async () => {
    const count = 6;
    const created = await fromBothNodes(count, (node, i) =>
      call(node, "POST", "pki/root/generate/internal", {
        common_name: `unnamed ${i}`,
        key_type: "ec",
        ttl: "24h",
      }),
    );
    const ids = created.map((reply) => {
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      return String(dataOf(reply).issuer_id);
    });
    // Both nodes must know every new issuer before renaming it by id.
    for (const node of nodes) {
      const known = await timeUntil(async () => {
        const listed = await call(node, "GET", "pki/issuers?list=true");
        const keys = (dataOf(listed)?.keys ?? []) as string[];
        return ids.every((id) => keys.includes(id));
      }, PROPAGATION_LIMIT_MS);
      assert.ok(known !== undefined, `${node.address} did not list the new issuers`);
    }

    const renames = await fromBothNodes(count, (node, i) =>
      call(node, "POST", `pki/issuer/${ids[i]}`, { issuer_name: "renamed-target" }),
    );
    const winner = onlyWinner(renames, "issuer_name", "renamed-target");
    await assertOneIssuer("renamed-target", String(dataOf(winner).issuer_id));
  });

  it("gives each key name to one generated key", async () => {
    const names = ["race-key-0", "race-key-1", "race-key-2"];
    const perName = 6;
    const groups = await racePerName(names, perName, (node, name, _, i) =>
      call(node, "POST", "pki/intermediate/generate/internal", {
        common_name: `intermediate ${i}`,
        key_type: "ec",
        key_name: name,
      }),
    );
    for (const [index, name] of names.entries()) {
      const winner = onlyWinner(groups[index]!, "key_name", name);
      assert.equal(dataOf(winner).key_name, name);
      // The name stays taken, on either node.
      for (const node of nodes) {
        const again = await call(node, "POST", "pki/intermediate/generate/internal", {
          common_name: "late",
          key_type: "ec",
          key_name: name,
        });
        assert.equal(again.status, 409, JSON.stringify(again.body));
        assert.equal(again.body.code, "already_exists");
      }
    }
  });

  it("gives each device name to one case variant", async () => {
    const names = ["edge-a", "edge-b", "edge-c"];
    const perName = 8;
    const variants = new Map(names.map((name) => [name, caseVariants(name, perName)]));
    const groups = await racePerName(names, perName, (node, name, round) =>
      call(node, "POST", `devices/registry/${variants.get(name)![round]}`, {}),
    );
    for (const [index, name] of names.entries()) {
      const winner = onlyWinner(groups[index]!, "name", name);
      const winnerName = String(dataOf(winner).name);
      for (const node of nodes) {
        const listed = await call(node, "GET", "devices/registry?list=true");
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        const matching = (dataOf(listed).keys as string[]).filter(
          (listedName) => listedName.toLowerCase() === name,
        );
        assert.deepEqual(matching, [winnerName]);
      }
    }
  });

  it("makes one device of one name sent to both nodes", async () => {
    const replies = await fromBothNodes(6, (node) =>
      call(node, "POST", "devices/registry/Relay-1", {}),
    );
    for (const reply of replies) assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const ids = new Set(replies.map((reply) => dataOf(reply).id));
    assert.equal(ids.size, 1, `the replies carry ids ${[...ids].join(", ")}`);
    for (const node of nodes) {
      const read = await call(node, "GET", "devices/registry/Relay-1");
      assert.equal(dataOf(read).id, [...ids][0]);
    }
  });

  it("frees a device name when the device is deleted", async () => {
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    assert.equal((await call(a, "POST", "devices/registry/Gate-9", {})).status, 200);
    const duplicate = await call(b, "POST", "devices/registry/gate-9", {});
    assert.equal(duplicate.status, 409, JSON.stringify(duplicate.body));
    assert.equal((await call(a, "DELETE", "devices/registry/Gate-9")).status, 204);
    const freed = await call(b, "POST", "devices/registry/gate-9", {});
    assert.equal(freed.status, 200, JSON.stringify(freed.body));
  });
});
