import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import {
  canonicalJson,
  chainRecord,
  GENESIS_HASH,
  recordHash,
  recordLine,
} from "../../src/audit/chain.ts";
import { type VerifyResult, verifyAuditLog } from "../../src/audit/verify.ts";
import {
  type BrokerFixture,
  openBroker,
  readLines,
  requestEntry,
  silentLogger,
  writeLines,
} from "./fixtures.ts";

/** Parses, edits and rehashes one line, as an attacker familiar with the format would. */
function rehashed(line: string, edit: (record: Record<string, unknown>) => void): string {
  const record = JSON.parse(line) as Record<string, unknown>;
  edit(record);
  record.hash = recordHash(record);
  return canonicalJson(record);
}

function readFileLines(path: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
}

describe("chainRecord", () => {
  it("returns the line recordLine writes", () => {
    const payload = {
      type: "response" as const,
      time: "2026-12-05T00:00:00.000Z",
      request: {
        id: "r1",
        operation: "update" as const,
        path: "transit/encrypt/k",
        remote_address: "127.0.0.1",
      },
      auth: { accessor: "a", display_name: "token", policies: ["default"] },
      response: { status: 200, data: { z: 1, a: [true, null] } },
      error: undefined,
    };
    const { record, line } = chainRecord(payload, { seq: 41, hash: GENESIS_HASH });
    assert.equal(record.seq, 42);
    assert.equal(record.hash, recordHash(record as unknown as Record<string, unknown>));
    assert.equal(line, recordLine(record));
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth", () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, "x"], c: null } }),
      '{"a":{"c":null,"d":[1,"x"]},"b":1}',
    );
  });

  it("drops undefined fields", () => {
    assert.equal(canonicalJson({ a: undefined, b: true }), '{"b":true}');
  });

  it("rejects non-finite numbers", () => {
    assert.throws(() => canonicalJson({ a: Number.NaN }), TypeError);
  });
});

describe("audit log verification", () => {
  let fixture: BrokerFixture;
  let logPath: string;
  let original: string[];
  let publicKeyPem: string;

  before(async () => {
    fixture = await openBroker({ checkpointInterval: 4 });
    logPath = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: logPath });
    for (let index = 1; index <= 10; index += 1) {
      await fixture.broker.logRequest(requestEntry(index));
    }
    publicKeyPem = fixture.broker.publicKey().publicKeyPem;
    await fixture.broker.close();
    original = readLines(logPath);
  });
  after(() => fixture.cleanup());

  it("writes records with checkpoints", () => {
    const types = original.map((line) => (JSON.parse(line) as { type: string }).type);
    // Checkpoints after records 4 and 8 (seq 5 and 10), and one at close (seq 13).
    assert.equal(types.length, 13);
    assert.equal(types[4], "checkpoint");
    assert.equal(types[9], "checkpoint");
    assert.equal(types[12], "checkpoint");
    const first = JSON.parse(original[0]!) as { seq: number; prev_hash: string };
    assert.equal(first.seq, 1);
    assert.equal(first.prev_hash, GENESIS_HASH);
  });

  it("keeps secrets out of the file", () => {
    const text = original.join("\n");
    assert.ok(!text.includes("kw.test-token"));
    assert.ok(!text.includes("cGxhaW50ZXh0LQ=="));
    assert.match(text, /"client_token":"hmac-sha256:[0-9a-f]{64}"/);
  });

  it("accepts the untouched file", async () => {
    const result = await verifyAuditLog(readFileLines(logPath), publicKeyPem);
    assert.deepEqual(result, {
      ok: true,
      records: 10,
      checkpoints: 3,
      lastSeq: 13,
      unsignedRecords: 0,
      signaturesChecked: true,
    });
  });

  const swap = (lines: string[], a: number, b: number) => {
    const copy = [...lines];
    [copy[a], copy[b]] = [copy[b]!, copy[a]!];
    return copy;
  };
  const replace = (lines: string[], index: number, line: string) =>
    lines.map((current, position) => (position === index ? line : current));
  const remove = (lines: string[], index: number) =>
    lines.filter((_, position) => position !== index);

  const cases: Array<{
    name: string;
    tamper: (lines: string[]) => string[];
    expected: { line: number; seq?: number; reason: string };
  }> = [
    {
      name: "fail edited record",
      tamper: (lines) => replace(lines, 2, lines[2]!.replace("transit/encrypt", "transit/decrypt")),
      expected: { line: 3, seq: 3, reason: "altered" },
    },
    {
      name: "fail edited and rehashed record",
      tamper: (lines) =>
        replace(
          lines,
          2,
          rehashed(lines[2]!, (record) => {
            record.time = "2000-01-01T00:00:00.000Z";
          }),
        ),
      expected: { line: 3, seq: 3, reason: "altered" },
    },
    {
      name: "fail deleted record",
      tamper: (lines) => remove(lines, 3),
      expected: { line: 4, seq: 4, reason: "removed" },
    },
    {
      name: "fail deleted first record",
      tamper: (lines) => remove(lines, 0),
      expected: { line: 1, seq: 1, reason: "removed" },
    },
    {
      name: "fail deleted checkpoint",
      tamper: (lines) => remove(lines, 4),
      expected: { line: 5, seq: 5, reason: "removed" },
    },
    {
      name: "fail swapped records",
      tamper: (lines) => swap(lines, 5, 6),
      expected: { line: 6, seq: 7, reason: "reordered" },
    },
    {
      name: "fail record moved later",
      tamper: (lines) => {
        const copy = remove(lines, 1);
        copy.splice(6, 0, lines[1]!);
        return copy;
      },
      expected: { line: 2, seq: 3, reason: "reordered" },
    },
    {
      name: "fail duplicated record",
      tamper: (lines) => [...lines.slice(0, 4), lines[2]!, ...lines.slice(4)],
      expected: { line: 5, seq: 3, reason: "reordered" },
    },
    {
      name: "fail line cut short",
      tamper: (lines) => [...lines.slice(0, 7), lines[7]!.slice(0, 40)],
      expected: { line: 8, reason: "malformed" },
    },
    {
      name: "fail inserted garbage line",
      tamper: (lines) => [...lines.slice(0, 2), "not json", ...lines.slice(2)],
      expected: { line: 3, reason: "malformed" },
    },
    {
      name: "fail changed signature",
      tamper: (lines) =>
        replace(
          lines,
          9,
          canonicalJson({
            ...JSON.parse(lines[9]!),
            signature: Buffer.alloc(64, 1).toString("base64"),
          }),
        ),
      expected: { line: 10, seq: 10, reason: "bad signature" },
    },
    {
      name: "fail rebuilt chain without the key",
      tamper: (lines) => {
        // Rewrite record 2 and rehash everything after it, as someone who can
        // write the file but has no signing key could.
        const rebuilt: string[] = [lines[0]!];
        let previous = (JSON.parse(lines[0]!) as { hash: string }).hash;
        for (const line of lines.slice(1)) {
          const edited = rehashed(line, (record) => {
            record.prev_hash = previous;
            if (record.seq === 2) record.time = "2000-01-01T00:00:00.000Z";
          });
          previous = (JSON.parse(edited) as { hash: string }).hash;
          rebuilt.push(edited);
        }
        return rebuilt;
      },
      expected: { line: 5, seq: 5, reason: "bad signature" },
    },
  ];

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const path = join(fixture.dir, "tampered.log");
      writeLines(path, testCase.tamper(original));
      const result = await verifyAuditLog(readFileLines(path), publicKeyPem);
      assert.equal(result.ok, false, JSON.stringify(result));
      const { firstBad } = result as Extract<VerifyResult, { ok: false }>;
      assert.equal(firstBad.reason, testCase.expected.reason, firstBad.detail);
      assert.equal(firstBad.line, testCase.expected.line, firstBad.detail);
      assert.equal(firstBad.seq, testCase.expected.seq, firstBad.detail);
    });
  }

  it("fail checkpoint under another key", async () => {
    const other = generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" });
    const result = await verifyAuditLog(original, other.toString());
    assert.equal(result.ok, false);
    assert.equal((result as Extract<VerifyResult, { ok: false }>).firstBad.reason, "bad signature");
    assert.equal((result as Extract<VerifyResult, { ok: false }>).firstBad.seq, 5);
  });

  it("ok rebuilt chain without a key", async () => {
    // Without the public key only the hash chain is checked, which anyone
    // who can write the file can rebuild.
    const rebuilt = cases.find(
      (testCase) => testCase.name === "fail rebuilt chain without the key",
    );
    const result = await verifyAuditLog(rebuilt!.tamper(original));
    assert.equal(result.ok, true);
    assert.equal((result as Extract<VerifyResult, { ok: true }>).signaturesChecked, false);
  });

  it("ok whole records truncated", async () => {
    // Cutting whole records off the end leaves a valid chain; the records
    // after the last checkpoint are reported as unsigned.
    const result = await verifyAuditLog(original.slice(0, 12), publicKeyPem);
    assert.equal(result.ok, true);
    const success = result as Extract<VerifyResult, { ok: true }>;
    assert.equal(success.lastSeq, 12);
    assert.equal(success.unsignedRecords, 2);
  });

  it("fail truncation with expected head", async () => {
    const last = JSON.parse(original[12]!) as { seq: number; hash: string };
    const result = await verifyAuditLog(original.slice(0, 12), publicKeyPem, {
      expectedHead: { seq: last.seq, hash: last.hash },
    });
    assert.equal(result.ok, false);
    const { firstBad } = result as Extract<VerifyResult, { ok: false }>;
    assert.equal(firstBad.reason, "removed");
    assert.equal(firstBad.seq, 13);
  });

  it("fail rewritten tail with expected head", async () => {
    // Records 11 and 12 follow the checkpoint at 10; rewriting and rehashing
    // them keeps the chain valid, but the end no longer matches the device.
    const end = JSON.parse(original[11]!) as { seq: number; hash: string };
    const rewritten = original.slice(0, 10);
    let previous = (JSON.parse(original[9]!) as { hash: string }).hash;
    for (const line of original.slice(10, 12)) {
      const edited = rehashed(line, (record) => {
        record.prev_hash = previous;
        record.time = "2000-01-01T00:00:00.000Z";
      });
      previous = (JSON.parse(edited) as { hash: string }).hash;
      rewritten.push(edited);
    }
    assert.equal((await verifyAuditLog(rewritten, publicKeyPem)).ok, true);

    const result = await verifyAuditLog(rewritten, publicKeyPem, {
      expectedHead: { seq: end.seq, hash: end.hash },
    });
    assert.equal(result.ok, false);
    const { firstBad } = result as Extract<VerifyResult, { ok: false }>;
    assert.equal(firstBad.reason, "altered");
    assert.equal(firstBad.seq, 12);
  });

  it("ok log past expected head", async () => {
    const head = JSON.parse(original[7]!) as { seq: number; hash: string };
    const result = await verifyAuditLog(original, publicKeyPem, {
      expectedHead: { seq: head.seq, hash: head.hash },
    });
    assert.equal(result.ok, true);
  });

  it("signed end required by strict mode", async () => {
    assert.equal(
      (await verifyAuditLog(original, publicKeyPem, { requireSignedEnd: true })).ok,
      true,
    );

    const truncated = await verifyAuditLog(original.slice(0, 12), publicKeyPem, {
      requireSignedEnd: true,
    });
    assert.equal(truncated.ok, false);
    const { firstBad } = truncated as Extract<VerifyResult, { ok: false }>;
    assert.equal(firstBad.reason, "unsigned");
    assert.equal(firstBad.seq, 12);

    const empty = await verifyAuditLog([], publicKeyPem, { requireSignedEnd: true });
    assert.equal(empty.ok, false);
    assert.equal((empty as Extract<VerifyResult, { ok: false }>).firstBad.reason, "unsigned");
  });

  it("rejects a public key that is not Ed25519", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      format: "pem",
      type: "spki",
    });
    await assert.rejects(verifyAuditLog(original, rsa.toString()), { code: "invalid_field" });
    await assert.rejects(verifyAuditLog(original, "not a key"), { code: "invalid_field" });
  });

  it("reports removal after truncation and restart", async () => {
    // Truncate the log to 8 records (before checkpoint 10), then reopen: the
    // device continues from its last checkpoint head, leaving a visible gap.
    writeLines(logPath, original.slice(0, 8));
    const reopened = await openBroker({ barrier: fixture.barrier, logger: silentLogger });
    await reopened.broker.logRequest(requestEntry(99));
    await reopened.cleanup();
    const result = await verifyAuditLog(readLines(logPath), publicKeyPem);
    assert.equal(result.ok, false);
    const { firstBad } = result as Extract<VerifyResult, { ok: false }>;
    assert.equal(firstBad.reason, "removed");
    assert.equal(firstBad.seq, 9);
    writeFileSync(logPath, original.map((line) => `${line}\n`).join(""));
  });
});

describe("expected node", () => {
  const line = (node: string | undefined) => {
    const payload = {
      type: "request" as const,
      time: "2024-05-01T00:00:00.000Z",
      node,
      request: { id: "r1", operation: "read" as const, path: "sys/mounts", remote_address: "::1" },
      auth: { accessor: "", display_name: "", policies: [] },
    };
    return chainRecord(payload, { seq: 0, hash: GENESIS_HASH }).line;
  };

  const cases: Array<[string, string | undefined, string | undefined]> = [
    ["ok same node", "a", undefined],
    ["fail other node", "b", 'record 1 names node "b", not node "a" whose chain it is in'],
    ["fail no node", undefined, 'record 1 names no node, not node "a" whose chain it is in'],
  ];
  for (const [name, node, detail] of cases) {
    it(name, async () => {
      const result = await verifyAuditLog([line(node)], undefined, { expectedNode: "a" });
      assert.equal(result.ok, detail === undefined);
      if (!result.ok) {
        assert.equal(result.firstBad.reason, "altered");
        assert.equal(result.firstBad.seq, 1);
        assert.equal(result.firstBad.detail, detail);
      }
    });
  }

  it("ok without the option", async () => {
    const result = await verifyAuditLog([line("b")]);
    assert.equal(result.ok, true);
  });
});
