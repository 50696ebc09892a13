import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, before, describe, it } from "node:test";
import acme from "acme-client";
import { requirePeer } from "../../../helpers/peers.ts";
import { run } from "../fixtures.ts";
import {
  type AcmeTestServer,
  assertChainVerifies,
  startAcmeServer,
  TEST_DOMAIN,
} from "./fixtures.ts";

/** DNS record type TXT (RFC 1035 section 3.2.2). */
const TXT = 16;

/** Reads the question name of a DNS query, returning it and the offset after it. */
function readName(message: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let position = offset;
  while (message[position]! > 0) {
    const length = message[position]!;
    labels.push(message.subarray(position + 1, position + 1 + length).toString("ascii"));
    position += length + 1;
  }
  return { name: labels.join(".").toLowerCase(), end: position + 1 };
}

/**
 * Starts a DNS server on loopback UDP that answers TXT queries from
 * `records` and sends NXDOMAIN for every other name.
 */
async function startDnsServer(
  records: Map<string, string[]>,
): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket("udp4");
  socket.on("message", (query, remote) => {
    const { name, end } = readName(query, 12);
    const type = query.readUInt16BE(end);
    const values = type === TXT ? (records.get(name) ?? []) : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    header.writeUInt16BE(values.length > 0 || records.has(name) ? 0x8180 : 0x8183, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(values.length, 6);
    const answers = values.map((value) => {
      const text = Buffer.from(value, "ascii");
      const answer = Buffer.alloc(12);
      answer.writeUInt16BE(0xc00c, 0);
      answer.writeUInt16BE(TXT, 2);
      answer.writeUInt16BE(1, 4);
      answer.writeUInt32BE(0, 6);
      answer.writeUInt16BE(text.length + 1, 10);
      return Buffer.concat([answer, Buffer.from([text.length]), text]);
    });
    socket.send(
      Buffer.concat([header, query.subarray(12, end + 4), ...answers]),
      remote.port,
      remote.address,
    );
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { port: socket.address().port, socket };
}

describe("ACME dns-01", () => {
  let server: AcmeTestServer;
  let dns: Awaited<ReturnType<typeof startDnsServer>>;
  const records = new Map<string, string[]>();

  before(async () => {
    dns = await startDnsServer(records);
    server = await startAcmeServer({ acme: { dns_resolver: `127.0.0.1:${dns.port}` } });
  });

  after(async () => {
    dns?.socket.close();
    await server?.close();
  });

  const issue = async (names: string[]) => {
    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 50,
      backoffMax: 500,
      backoffAttempts: 30,
    });
    const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names });
    return client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ["dns-01"],
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
        // acme-client hands dns-01 the TXT value: base64url(SHA-256(key authorization)).
        const name = `_acme-challenge.${authz.identifier.value}`;
        records.set(name, [...(records.get(name) ?? []), keyAuthorization]);
      },
      challengeRemoveFn: async (authz) => {
        records.delete(`_acme-challenge.${authz.identifier.value}`);
      },
    });
  };

  it("issues wildcard certificate over dns-01", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const chain = await issue([`*.wild.${TEST_DOMAIN}`, `wild.${TEST_DOMAIN}`]);
    assertChainVerifies(server, chain, run);
    const info = acme.crypto.readCertificateInfo(chain);
    assert.ok(info.domains.altNames.includes(`*.wild.${TEST_DOMAIN}`));
  });

  it("rejects missing TXT record", async () => {
    const client = new acme.Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 50,
      backoffMax: 500,
      backoffAttempts: 30,
    });
    await client.createAccount({ termsOfServiceAgreed: true });
    const order = await client.createOrder({
      identifiers: [{ type: "dns", value: `*.none.${TEST_DOMAIN}` }],
    });
    const [authorization] = await client.getAuthorizations(order);
    assert.equal(authorization!.wildcard, true);
    assert.deepEqual(
      authorization!.challenges.map((challenge) => challenge.type),
      ["dns-01"],
    );
    await client.completeChallenge(authorization!.challenges[0]!);
    await assert.rejects(client.waitForValidStatus(authorization!));
    const updated = await client.getOrder(order);
    assert.equal(
      (updated.error as { type?: string } | undefined)?.type,
      "urn:ietf:params:acme:error:dns",
    );
  });
});
