import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { appendFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { verifyAuditLog } from "../../src/audit/verify.ts";
import {
  capturingLogger,
  openBroker,
  readLines,
  requestEntry,
  responseEntry,
  silentLogger,
  startLineServer,
} from "./fixtures.ts";

/** Matches an RFC 5424 message as the syslog device formats it. */
const SYSLOG_MESSAGE = /^<(\d+)>1 (\S+) (\S+) (\S+) (\d+) (\S+) - (.*)$/s;

describe("file device", () => {
  it("writes a verifiable file with mode 0600", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.logResponse(responseEntry(1));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    assert.equal(statSync(path).mode & 0o777, 0o600);
    const lines = readLines(path);
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).type),
      ["request", "response", "checkpoint"],
    );
    const result = await verifyAuditLog(lines, publicKeyPem);
    assert.equal(result.ok, true);
    await fixture.cleanup();
  });

  it("continues the chain after reopening", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.close();
    await fixture.broker.open();
    await fixture.broker.logRequest(requestEntry(2));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    const seqs = readLines(path).map((line) => JSON.parse(line).seq);
    assert.deepEqual(seqs, [1, 2, 3, 4]);
    assert.equal((await verifyAuditLog(readLines(path), publicKeyPem)).ok, true);
    await fixture.cleanup();
  });

  it("rotates to a new file on reopen", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    const rotated = join(fixture.dir, "audit.log.1");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    renameSync(path, rotated);
    await fixture.broker.reopenFiles();
    await fixture.broker.logRequest(requestEntry(2));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    const oldLines = readLines(rotated);
    const newLines = readLines(path);
    assert.deepEqual(
      oldLines.map((line) => JSON.parse(line).type),
      ["request", "checkpoint"],
    );
    assert.deepEqual(
      newLines.map((line) => JSON.parse(line).seq),
      [3, 4],
    );

    const strictOld = await verifyAuditLog(oldLines, publicKeyPem, { requireSignedEnd: true });
    assert.equal(strictOld.ok, true);
    const whole = await verifyAuditLog([...oldLines, ...newLines], publicKeyPem, {
      requireSignedEnd: true,
    });
    assert.equal(whole.ok, true);

    const alone = await verifyAuditLog(newLines, publicKeyPem);
    assert.equal(alone.ok, false);
    const continued = await verifyAuditLog(newLines, publicKeyPem, { continuation: true });
    assert.equal(continued.ok, true);
    await fixture.cleanup();
  });

  it("reopens an unrotated file in place", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.reopenFiles();
    await fixture.broker.logRequest(requestEntry(2));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    const seqs = readLines(path).map((line) => JSON.parse(line).seq);
    assert.deepEqual(seqs, [1, 2, 3, 4]);
    assert.equal((await verifyAuditLog(readLines(path), publicKeyPem)).ok, true);
    await fixture.cleanup();
  });

  it("cuts off a partial last line", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.close();
    appendFileSync(path, '{"type":"request","seq":3');
    await fixture.broker.open();
    await fixture.broker.logRequest(requestEntry(2));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    const result = await verifyAuditLog(readLines(path), publicKeyPem);
    assert.equal(result.ok, true, JSON.stringify(result));
    await fixture.cleanup();
  });

  it("fail two devices on one file", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await assert.rejects(
      fixture.broker.enable("copy", "file", { file_path: join(fixture.dir, ".", "audit.log") }),
      { code: "invalid_field", field: "options.file_path" },
    );
    await fixture.cleanup();
  });

  it("fail enable in a missing folder", async () => {
    const fixture = await openBroker();
    await assert.rejects(
      fixture.broker.enable("file", "file", { file_path: join(fixture.dir, "no/such/audit.log") }),
      { code: "invalid_request", field: "options.file_path", message: /ENOENT/ },
    );
    assert.deepEqual(
      fixture.broker.list().map((entry) => entry.path),
      ["store"],
    );
    await fixture.cleanup();
  });
});

describe("socket device", () => {
  for (const kind of ["tcp", "unix"] as const) {
    it(`sends verifiable lines over ${kind}`, async () => {
      const fixture = await openBroker();
      const server = await startLineServer(
        kind === "unix" ? { unixPath: join(fixture.dir, "audit.sock") } : {},
      );
      await fixture.broker.enable("siem", "socket", {
        address: server.address,
        socket_type: kind,
      });
      await fixture.broker.logRequest(requestEntry(1));
      await fixture.broker.logResponse(responseEntry(1));
      const { publicKeyPem } = fixture.broker.publicKey();
      await fixture.broker.close();

      const lines = await server.waitForLines(3);
      const result = await verifyAuditLog(lines, publicKeyPem);
      assert.deepEqual(result, {
        ok: true,
        records: 2,
        checkpoints: 1,
        lastSeq: 3,
        unsignedRecords: 0,
        signaturesChecked: true,
      });
      await server.close();
      await fixture.cleanup();
    });
  }

  it("fail enable without a listener", async () => {
    const fixture = await openBroker();
    const server = await startLineServer();
    await server.close();
    await assert.rejects(fixture.broker.enable("siem", "socket", { address: server.address }), {
      code: "invalid_request",
      field: "options.address",
      message: /ECONNREFUSED/,
    });
    await fixture.cleanup();
  });

  it("times out on a peer that never reads", async () => {
    const { logger, entries } = capturingLogger();
    const fixture = await openBroker({ logger });
    const server = await startLineServer({ neverRead: true });
    await fixture.broker.enable("stuck", "socket", {
      address: server.address,
      write_timeout: "200ms",
    });
    await fixture.broker.disable("store");

    // The kernel buffers some megabytes before writes block, so send
    // records of about 1 MiB until one times out. Each string stays below
    // the length at which a record keeps only its HMAC.
    const large = { ...requestEntry(1) };
    const padding = Object.fromEntries(
      Array.from({ length: 16 }, (_, index) => [`padding_${index}`, "x".repeat(64 * 1024)]),
    );
    large.request = { ...large.request, data: padding };
    let failure: unknown;
    for (let attempt = 0; attempt < 200 && failure === undefined; attempt += 1) {
      await fixture.broker.logRequest(large).catch((error: unknown) => {
        failure = error;
      });
    }
    assert.ok(failure, "no write timed out");
    assert.equal((failure as { code: string }).code, "audit_failure");
    assert.ok((fixture.broker.stats().stuck?.failures ?? 0) >= 1);
    const logged = entries.find((entry) => entry.msg === "audit device write failed");
    assert.equal((logged?.err as { type?: string } | undefined)?.type, "AuditTimeoutError");
    assert.equal(logged?.device, "stuck");

    await server.close();
    await fixture.cleanup();
  });
});

describe("syslog device", () => {
  it("sends RFC 5424 datagrams over UDP", async () => {
    const fixture = await openBroker();
    const receiver = createSocket("udp4");
    const messages: string[] = [];
    receiver.on("message", (message) => messages.push(message.toString("utf8")));
    await new Promise<void>((resolve) => receiver.bind(0, "127.0.0.1", resolve));
    const port = receiver.address().port;

    await fixture.broker.enable("syslog", "syslog", {
      address: `127.0.0.1:${port}`,
      facility: "LOCAL4",
      tag: "keyward-test",
    });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.logResponse(responseEntry(1));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();
    for (let wait = 0; wait < 100 && messages.length < 3; wait += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    assert.equal(messages.length, 3);
    const parsed = messages.map((message) => SYSLOG_MESSAGE.exec(message));
    for (const match of parsed) {
      assert.ok(match, "not an RFC 5424 message");
      // local4 (20) * 8 + informational (6)
      assert.equal(match[1], "166");
      assert.equal(match[4], "keyward-test");
      assert.equal(match[5], String(process.pid));
    }
    assert.deepEqual(
      parsed.map((match) => match?.[6]),
      ["request", "response", "checkpoint"],
    );
    const lines = parsed.map((match) => match?.[7] ?? "");
    assert.equal((await verifyAuditLog(lines, publicKeyPem)).ok, true);
    receiver.close();
    await fixture.cleanup();
  });

  it("sends octet-counted frames over TCP", async () => {
    const fixture = await openBroker();
    const server = await startLineServer();
    await fixture.broker.enable("syslog", "syslog", {
      address: server.address,
      socket_type: "tcp",
    });
    await fixture.broker.logRequest(requestEntry(1));
    const { publicKeyPem } = fixture.broker.publicKey();
    await fixture.broker.close();

    // Frames are `LENGTH SP MESSAGE` with no newline; read until two arrive.
    const frames: string[] = [];
    for (let wait = 0; wait < 100 && frames.length < 2; wait += 1) {
      frames.length = 0;
      let rest = server.received();
      while (rest.length > 0) {
        const space = rest.indexOf(0x20);
        const length = Number(rest.subarray(0, space).toString("ascii"));
        if (rest.length < space + 1 + length) break;
        frames.push(rest.subarray(space + 1, space + 1 + length).toString("utf8"));
        rest = rest.subarray(space + 1 + length);
      }
      if (frames.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(frames.length, 2);
    const lines = frames.map((frame) => SYSLOG_MESSAGE.exec(frame)?.[7] ?? "");
    // auth (4) * 8 + informational (6)
    assert.equal(SYSLOG_MESSAGE.exec(frames[0]!)?.[1], "38");
    assert.equal((await verifyAuditLog(lines, publicKeyPem)).ok, true);
    await server.close();
    await fixture.cleanup();
  });

  it("rejects an unknown facility", async () => {
    const fixture = await openBroker();
    await assert.rejects(fixture.broker.enable("syslog", "syslog", { facility: "local9" }), {
      code: "invalid_field",
      field: "options.facility",
    });
    await fixture.cleanup();
  });
});

describe("store device", () => {
  it("is enabled on a new installation", async () => {
    const fixture = await openBroker();
    assert.deepEqual(
      fixture.broker.list().map((entry) => [entry.path, entry.type]),
      [["store", "store"]],
    );
    await fixture.broker.logRequest(requestEntry(1));
    const keys = [...fixture.barrier.values.keys()].filter((key) =>
      key.startsWith("sys/audit/store/store/local/"),
    );
    assert.deepEqual(keys, ["sys/audit/store/store/local/00000000000000000001"]);
    await fixture.cleanup();
  });

  it("stores a batch as one value", async () => {
    const fixture = await openBroker();
    // Records logged in the same turn of the event loop form one batch.
    await Promise.all([1, 2, 3].map((index) => fixture.broker.logRequest(requestEntry(index))));
    const keys = [...fixture.barrier.values.keys()].filter((key) =>
      key.startsWith("sys/audit/store/store/local/"),
    );
    assert.deepEqual(keys, ["sys/audit/store/store/local/00000000000000000001"]);
    await fixture.broker.logRequest(requestEntry(4));
    const result = await fixture.broker.verifyStore();
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.records, 4);
    await fixture.cleanup();
  });

  it("stays disabled once disabled", async () => {
    const fixture = await openBroker();
    await fixture.broker.disable("store");
    await fixture.broker.close();
    await fixture.broker.open();
    assert.deepEqual(fixture.broker.list(), []);
    // With no device, logging writes nothing and succeeds.
    const writes = fixture.barrier.writes;
    await fixture.broker.logRequest(requestEntry(1));
    assert.equal(fixture.barrier.writes, writes);
    await fixture.cleanup();
  });

  it("verifies its records", async () => {
    const fixture = await openBroker({ checkpointInterval: 3 });
    for (let index = 1; index <= 7; index += 1)
      await fixture.broker.logRequest(requestEntry(index));
    const result = await fixture.broker.verifyStore();
    assert.equal(result.ok, true);
    assert.equal(result.ok && result.checkpoints, 2);

    // Change one stored record behind the broker's back.
    const key = "sys/audit/store/store/local/00000000000000000002";
    const stored = Buffer.from(fixture.barrier.values.get(key)!).toString("utf8");
    fixture.barrier.values.set(key, Buffer.from(stored.replace("req-2", "req-X")));
    const tampered = await fixture.broker.verifyStore("store");
    assert.equal(tampered.ok, false);
    assert.deepEqual(tampered.firstBad?.seq, 2);
    assert.equal(tampered.firstBad?.reason, "altered");
    assert.equal(tampered.firstBad?.node, "local");
    await fixture.cleanup();
  });
});

describe("broker failures", () => {
  it("fail closed when every device fails", async () => {
    const fixture = await openBroker();
    const server = await startLineServer();
    await fixture.broker.enable("siem", "socket", { address: server.address });
    await server.close();
    // Reopening makes the socket device reconnect, which the closed server refuses.
    await fixture.broker.close();
    await fixture.broker.open();
    fixture.barrier.failWrites = true;

    await assert.rejects(fixture.broker.logRequest(requestEntry(1)), { code: "audit_failure" });
    const stats = fixture.broker.stats();
    assert.equal(stats.store?.failures, 1);
    assert.equal(stats.siem?.failures, 1);
    fixture.barrier.failWrites = false;
    await fixture.cleanup();
  });

  it("succeeds when one of two devices fails", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    fixture.barrier.failWrites = true;

    await fixture.broker.logRequest(requestEntry(1));
    assert.equal(fixture.broker.stats().store?.failures, 1);
    assert.equal(fixture.broker.stats().file?.writes, 1);
    assert.equal(readLines(path).length, 1);

    // The store recovers without a gap: the failed record took no sequence number.
    fixture.barrier.failWrites = false;
    await fixture.broker.logRequest(requestEntry(2));
    assert.equal((await fixture.broker.verifyStore()).ok, true);
    await fixture.cleanup();
  });

  it("logs nothing while closed", async () => {
    const fixture = await openBroker();
    await fixture.broker.close();
    const writes = fixture.barrier.writes;
    await fixture.broker.logRequest(requestEntry(1));
    assert.equal(fixture.barrier.writes, writes);
    assert.throws(() => fixture.broker.list(), { code: "sealed" });
    await fixture.cleanup();
  });
});

describe("device table", () => {
  it("persists across reopening", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path }, "local copy");
    await fixture.broker.close();

    const reopened = await openBroker({ barrier: fixture.barrier, logger: silentLogger });
    assert.deepEqual(
      reopened.broker.list().map((entry) => [entry.path, entry.type, entry.description]),
      [
        ["store", "store", "built-in audit store"],
        ["file", "file", "local copy"],
      ],
    );
    await reopened.cleanup();
    await fixture.cleanup();
  });

  const invalid: Array<[string, string, Record<string, unknown>, string, string]> = [
    [
      "fail unknown option",
      "store",
      { hmac_accessor: "false" },
      "unknown_field",
      "options.hmac_accessor",
    ],
    ["fail missing file path", "file", {}, "missing_field", "options.file_path"],
    [
      "fail relative file path",
      "file",
      { file_path: "audit.log" },
      "invalid_field",
      "options.file_path",
    ],
    [
      "fail bad socket address",
      "socket",
      { address: "localhost" },
      "invalid_field",
      "options.address",
    ],
    [
      "fail bad write timeout",
      "store",
      { write_timeout: "soon" },
      "invalid_field",
      "options.write_timeout",
    ],
    [
      "fail zero checkpoint interval",
      "store",
      { checkpoint_interval: "0" },
      "invalid_field",
      "options.checkpoint_interval",
    ],
    [
      "fail option not a string",
      "store",
      { write_timeout: 5 },
      "invalid_field",
      "options.write_timeout",
    ],
  ];
  for (const [name, type, options, code, field] of invalid) {
    it(name, async () => {
      const fixture = await openBroker();
      await assert.rejects(fixture.broker.enable("other", type as "store", options), {
        code,
        field,
      });
      await fixture.cleanup();
    });
  }

  it("fail enable at a used path", async () => {
    const fixture = await openBroker();
    await assert.rejects(fixture.broker.enable("store/", "store"), { code: "already_exists" });
    await assert.rejects(fixture.broker.disable("missing"), { code: "not_found" });
    await assert.rejects(fixture.broker.enable("Bad Path", "store"), { code: "invalid_field" });
    await fixture.cleanup();
  });
});
