import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { makeDeviceKeys } from "../devices/fixtures.ts";
import { postgresSkipReason } from "../helpers/postgres.ts";
import type { ServerProcess } from "../helpers/server-process.ts";
import { call, mountPkiOnBoth, startTwoNodes, type TwoNodes, timeUntil } from "./nodes.ts";

// A device bootstrap token limited to one use is sent to two nodes at the
// same moment. The enrolment transaction reads the token again and counts
// its use, so exactly one request may enrol the device, whichever node
// serves it. The use limits of tokens and AppRole secret IDs across nodes
// are tested in shared-limits.test.ts.

/** Rounds, each with a new device and token. */
const ROUNDS = 4;
/**
 * Enrolments sent to each node per round. Each node rate-limits failed
 * enrolments per source address (10 at once by default), and each round
 * has `2 * PER_NODE - 1` failures spread over both nodes.
 */
const PER_NODE = 2;
/** How soon another node must use a change, as the cluster promises. */
const PROPAGATION_LIMIT_MS = 1_000;

type Reply = Awaited<ReturnType<typeof call>>;

/** Returns a serial number in lower-case hex without separators. */
function plainSerial(serial: unknown): string {
  return String(serial).replaceAll(":", "").toLowerCase();
}

/** Returns the certificates that `node`'s PKI mount stores for common name `name`. */
async function certificatesNamed(node: ServerProcess, name: string) {
  const listed = await call(node, "GET", "pki/certs?list=true");
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  const found: { serial: string; revoked: boolean }[] = [];
  for (const serial of (listed.body.data as { keys: string[] }).keys) {
    const read = await call(node, "GET", `pki/cert/${serial}`);
    const data = read.body.data as { certificate: string; revocation_time: number };
    if (new X509Certificate(data.certificate).subject !== `CN=${name}`) continue;
    found.push({ serial: plainSerial(serial), revoked: data.revocation_time > 0 });
  }
  return found;
}

describe("single-use bootstrap token across nodes", { skip: postgresSkipReason() }, () => {
  let twoNodes: TwoNodes;
  let nodes: ServerProcess[];

  before(async () => {
    twoNodes = await startTwoNodes();
    nodes = twoNodes.nodes;
    const a = nodes[0]!;
    await mountPkiOnBoth(nodes, PROPAGATION_LIMIT_MS, { max_lease_ttl: "87600h" });
    const setup: [string, string, unknown, number][] = [
      [
        "POST",
        "pki/root/generate/internal",
        { common_name: "Enrolment Root", key_type: "ec", ttl: "87600h" },
        200,
      ],
      [
        "POST",
        "pki/roles/devices",
        {
          allow_any_name: true,
          enforce_hostnames: false,
          key_type: "any",
          server_flag: false,
          client_flag: true,
          ttl: "720h",
        },
        200,
      ],
      ["POST", "devices/config", { pki_mount: "pki", pki_role: "devices" }, 200],
    ];
    for (const [method, path, body, status] of setup) {
      const reply = await call(a, method, path, body);
      assert.ok(
        reply.status === status || (status === 200 && reply.status === 204),
        `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`,
      );
    }
    const configured = await timeUntil(
      async () => (await call(nodes[1]!, "GET", "devices/config")).status === 200,
      PROPAGATION_LIMIT_MS,
    );
    assert.ok(configured !== undefined, "node-b did not read the device configuration");
  });
  after(async () => {
    await twoNodes?.stop();
  });

  /** Registers device `name` on node-a and returns a bootstrap token with one use. */
  async function tokenFor(name: string): Promise<string> {
    const registered = await call(nodes[0]!, "POST", `devices/registry/${name}`, {});
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    const created = await call(nodes[0]!, "POST", `devices/registry/${name}/bootstrap-token`, {
      num_uses: 1,
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    return String((created.body.data as { bootstrap_token: string }).bootstrap_token);
  }

  it("enrols once when both nodes receive the token", async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = `race-enrol-${round}`;
      const token = await tokenFor(name);
      const payloads = await Promise.all(
        Array.from({ length: 2 * PER_NODE }, async () => {
          const keys = await makeDeviceKeys(name);
          return { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey };
        }),
      );
      // Both nodes must find the token before the race, so only the use count decides.
      for (const node of nodes) {
        const seen = await timeUntil(async () => {
          const read = await call(node, "GET", `devices/registry/${name}`);
          return read.status === 200;
        }, PROPAGATION_LIMIT_MS);
        assert.ok(seen !== undefined, `${node.address} did not read device ${name}`);
      }

      const replies: Reply[] = await Promise.all(
        payloads.map((payload, i) => call(nodes[i % 2]!, "POST", "devices/enroll", payload, "")),
      );

      const summary = JSON.stringify(replies.map((reply) => [reply.status, reply.body.code]));
      const winners = replies.filter((reply) => reply.status === 200);
      assert.equal(winners.length, 1, `round ${round}: ${summary}`);
      for (const loser of replies.filter((reply) => reply.status !== 200)) {
        assert.equal(loser.status, 403, `round ${round}: ${summary}`);
        assert.equal(loser.body.code, "bootstrap_token_used", `round ${round}: ${summary}`);
      }

      // Both nodes show the device enrolled with the winner's certificate.
      const winnerSerial = plainSerial(
        (winners[0]!.body.data as { serial_number: string }).serial_number,
      );
      for (const node of nodes) {
        let seen: unknown;
        const delay = await timeUntil(async () => {
          const read = await call(node, "GET", `devices/registry/${name}`);
          const data = read.body.data as
            | { state?: string; certificate_serial?: string }
            | undefined;
          seen = data;
          return (
            data?.state === "enrolled" && plainSerial(data.certificate_serial) === winnerSerial
          );
        }, PROPAGATION_LIMIT_MS);
        assert.ok(delay !== undefined, `${node.address} shows ${JSON.stringify(seen)}`);
      }

      // A loser that signed a certificate before its transaction failed revoked that certificate.
      const issued = await certificatesNamed(nodes[0]!, name);
      assert.ok(issued.some((certificate) => certificate.serial === winnerSerial));
      for (const certificate of issued) {
        const expected = certificate.serial !== winnerSerial;
        assert.equal(certificate.revoked, expected, `round ${round}: ${certificate.serial}`);
      }
    }
  });
});
