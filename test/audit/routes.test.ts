import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Fastify, { type FastifyInstance, type InjectOptions } from "fastify";
import { handleError } from "../../src/api/error-handler.ts";
import { registerAuditHooks, registerAuditRoutes } from "../../src/api/routes/sys-audit.ts";
import { AuditBroker } from "../../src/audit/broker.ts";
import type { AuditRecord } from "../../src/audit/types.ts";
import { KeywardError } from "../../src/errors.ts";
import { REPO_ROOT } from "../helpers/server-process.ts";
import {
  type BrokerFixture,
  openBroker,
  readLines,
  requestEntry,
  silentLogger,
} from "./fixtures.ts";

const TOKEN = "kw.route-test-token";
const CLI_FIXTURE = join(REPO_ROOT, "test/audit/fixtures/audit-cli.ts");

/** Runs the audit commands in a child process and returns the exit status and output. */
async function auditCli(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", CLI_FIXTURE, "audit", ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { status, stdout, stderr };
}

/**
 * Builds a bare Fastify app with the audit hooks and routes, a stand-in for
 * the token check, and one transit-like route that counts its calls.
 */
async function buildAuditApp(fixture: BrokerFixture) {
  const app: FastifyInstance = Fastify({ logger: false });
  app.setErrorHandler(handleError);
  let handled = 0;
  app.addHook("onRequest", async (request) => {
    if (request.headers["x-vault-token"] !== TOKEN) {
      throw new KeywardError("permission_denied", "permission denied");
    }
    request.identity = { accessor: "acc-test", displayName: "root", policies: ["root"] };
  });
  registerAuditHooks(app, fixture.broker);
  await registerAuditRoutes(app, fixture.broker);
  app.post("/v1/transit/encrypt/:name", async () => {
    handled += 1;
    return { data: { ciphertext: "keyward:v1:abc" } };
  });
  await app.ready();
  return { app, handledCount: () => handled };
}

describe("audit routes", () => {
  let fixture: BrokerFixture;
  let app: FastifyInstance;
  let handledCount: () => number;
  const request = (options: InjectOptions) =>
    app.inject({ ...options, headers: { "x-vault-token": TOKEN, ...options.headers } });

  before(async () => {
    fixture = await openBroker({ checkpointInterval: 5 });
    ({ app, handledCount } = await buildAuditApp(fixture));
  });
  after(async () => {
    await app.close();
    await fixture.cleanup();
  });

  it("lists devices in Vault's shape", async () => {
    const response = await request({ method: "GET", url: "/v1/sys/audit" });
    assert.equal(response.statusCode, 200);
    const body = response.json();
    assert.deepEqual(body["store/"], {
      type: "store",
      description: "built-in audit store",
      options: {},
      path: "store/",
      local: false,
    });
    assert.deepEqual(body.data["store/"], body["store/"]);
  });

  it("enables and disables a file device", async () => {
    const path = join(fixture.dir, "route.log");
    const enabled = await request({
      method: "PUT",
      url: "/v1/sys/audit/local-file",
      payload: { type: "file", description: "copy", options: { file_path: path } },
    });
    assert.equal(enabled.statusCode, 204);
    const listed = (await request({ method: "GET", url: "/v1/sys/audit" })).json();
    assert.equal(listed["local-file/"].options.file_path, path);

    const disabled = await request({ method: "DELETE", url: "/v1/sys/audit/local-file" });
    assert.equal(disabled.statusCode, 204);
    // The disable request and its response were written before the device closed.
    assert.ok(readLines(path).length >= 2);
  });

  it("rejects an unknown device type", async () => {
    const response = await request({
      method: "PUT",
      url: "/v1/sys/audit/other",
      payload: { type: "kafka" },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, "invalid_field");
  });

  it("records requests with secrets hmac'd", async () => {
    const response = await request({
      method: "POST",
      url: "/v1/transit/encrypt/orders",
      payload: { plaintext: "c2VjcmV0LXZhbHVl" },
    });
    assert.equal(response.statusCode, 200);
    const { records } = await fixture.broker.search({ key: "orders" });
    const [logged, answered] = records as AuditRecord[];
    assert.equal(logged?.type, "request");
    assert.equal(logged?.request.operation, "update");
    assert.equal(logged?.request.path, "transit/encrypt/orders");
    assert.equal(logged?.auth.accessor, "acc-test");
    assert.match(
      String((logged?.request.data as { plaintext?: string } | undefined)?.plaintext),
      /^hmac-sha256:/,
    );
    assert.equal(answered?.type, "response");
    assert.equal(answered?.response?.status, 200);
    assert.ok(!JSON.stringify(records).includes("c2VjcmV0LXZhbHVl"));
    assert.ok(!JSON.stringify(records).includes(TOKEN));
  });

  it("audit-hash matches the logged token", async () => {
    const hashed = await request({
      method: "POST",
      url: "/v1/sys/audit-hash/store",
      payload: { input: TOKEN },
    });
    assert.equal(hashed.statusCode, 200);
    const { records } = await fixture.broker.search({ key: "orders", type: "request" });
    assert.equal(hashed.json().hash, (records[0] as AuditRecord).auth.client_token);
    assert.equal(hashed.json().data.hash, hashed.json().hash);
  });

  it("fail audit-hash for a missing device", async () => {
    const response = await request({
      method: "POST",
      url: "/v1/sys/audit-hash/nowhere",
      payload: { input: "x" },
    });
    assert.equal(response.statusCode, 404);
  });

  it("records a request rejected by the token check", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/v1/transit/encrypt/rejected",
      payload: { plaintext: "eA==" },
      headers: { "x-vault-token": "kw.wrong" },
    });
    assert.equal(response.statusCode, 403);
    const { records } = await fixture.broker.search({ path_prefix: "transit/encrypt/rejected" });
    assert.deepEqual(
      records.map((record) => record.type),
      ["request", "response"],
    );
    const answered = records[1] as AuditRecord;
    assert.equal(answered.response?.status, 403);
    assert.equal(answered.error, "permission denied");
    assert.equal(answered.auth.accessor, "");
  });

  it("searches through the API", async () => {
    const response = await request({
      method: "GET",
      url: "/v1/sys/audit/search?accessor=acc-test&type=request&path_prefix=transit/&limit=1",
    });
    assert.equal(response.statusCode, 200);
    const { data } = response.json();
    assert.equal(data.records.length, 1);
    assert.equal(data.records[0].request.path, "transit/encrypt/orders");
  });

  it("verifies the store through the API", async () => {
    const response = await request({ method: "GET", url: "/v1/sys/audit/verify?device=store" });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json().data.ok, true);
    assert.equal(response.json().data.signaturesChecked, true);
    assert.deepEqual(
      response.json().data.nodes.map((chain: { node: string }) => chain.node),
      ["local"],
    );
  });

  it("verifies and searches each node through the API", async () => {
    const other = new AuditBroker({
      barrier: fixture.barrier,
      logger: silentLogger,
      nodeId: "node-2",
    });
    await other.open();
    await other.logRequest(requestEntry(1));
    await other.close();
    try {
      const verified = await request({ method: "GET", url: "/v1/sys/audit/verify" });
      assert.equal(verified.statusCode, 200);
      const result = verified.json().data;
      assert.equal(result.ok, true);
      assert.deepEqual(
        result.nodes.map((chain: { node: string; records: number }) => [chain.node, chain.records]),
        [
          ["local", result.nodes[0].records],
          ["node-2", 1],
        ],
      );

      const searched = await request({
        method: "GET",
        url: "/v1/sys/audit/search?node=node-2&type=request",
      });
      assert.equal(searched.statusCode, 200);
      const { records } = searched.json().data;
      assert.deepEqual(
        records.map((record: AuditRecord) => [record.node, record.request.id]),
        [["node-2", "req-1"]],
      );
    } finally {
      for (const key of fixture.barrier.values.keys()) {
        if (key.includes("/node-2")) fixture.barrier.values.delete(key);
      }
    }
  });

  it("rejects an invalid node in a search", async () => {
    const response = await request({ method: "GET", url: "/v1/sys/audit/search?node=a%2Fb" });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, "invalid_field");
    assert.match(response.json().errors[0], /^node must be/);
  });

  it("store verification detects truncation", async () => {
    const prefix = "sys/audit/store/store/local/";
    const keys = [...fixture.barrier.values.keys()].filter((key) => key.startsWith(prefix)).sort();
    const lastKey = keys.at(-1)!;
    const saved = fixture.barrier.values.get(lastKey)!;
    fixture.barrier.values.delete(lastKey);
    try {
      // This request's own records come after the deleted one, so the gap shows as a removal.
      const response = await request({ method: "GET", url: "/v1/sys/audit/verify?device=store" });
      assert.equal(response.statusCode, 200);
      const result = response.json().data;
      assert.equal(result.ok, false);
      assert.equal(result.firstBad.reason, "removed");
    } finally {
      fixture.barrier.values.set(lastKey, saved);
    }
  });

  it("serves the public key as PEM", async () => {
    const response = await request({ method: "GET", url: "/v1/sys/audit/public-key" });
    assert.equal(response.statusCode, 200);
    assert.match(response.json().data.public_key, /^-----BEGIN PUBLIC KEY-----/);
    assert.match(response.json().data.key_id, /^[0-9a-f]{16}$/);
  });

  it("fails closed when no device writes", async () => {
    const before = handledCount();
    fixture.barrier.failWrites = true;
    try {
      const response = await request({
        method: "POST",
        url: "/v1/transit/encrypt/orders",
        payload: { plaintext: "eA==" },
      });
      assert.equal(response.statusCode, 500);
      assert.equal(response.json().code, "audit_failure");
      // The same message as a failed response record gets.
      assert.deepEqual(response.json().errors, ["no audit device could record the request"]);
      assert.equal(handledCount(), before);
    } finally {
      fixture.barrier.failWrites = false;
    }
  });
});

describe("audit CLI", () => {
  let fixture: BrokerFixture;
  let app: FastifyInstance;
  let address: string;
  let logPath: string;
  let keyPath: string;

  before(async () => {
    fixture = await openBroker({ checkpointInterval: 3 });
    logPath = join(fixture.dir, "cli.log");
    keyPath = join(fixture.dir, "audit-key.pem");
    await fixture.broker.enable("file", "file", { file_path: logPath });
    ({ app } = await buildAuditApp(fixture));
    address = await app.listen({ host: "127.0.0.1", port: 0 });
    writeFileSync(keyPath, fixture.broker.publicKey().publicKeyPem);
  });
  after(async () => {
    await app.close();
    await fixture.cleanup();
  });

  const clientArgs = () => ["--address", address, "--token", TOKEN];

  it("searches by accessor", async () => {
    await fetch(`${address}/v1/transit/encrypt/cli-key`, {
      method: "POST",
      headers: { "x-vault-token": TOKEN, "content-type": "application/json" },
      body: JSON.stringify({ plaintext: "eA==" }),
    });
    const result = await auditCli([
      "search",
      "--key",
      "cli-key",
      "--accessor",
      "acc-test",
      ...clientArgs(),
    ]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^Time\s+Node\s+Seq\s+Type/);
    assert.equal(lines.length, 4);
    assert.match(
      lines[2] ?? "",
      /local\s+\d+\s+request\s+update\s+transit\/encrypt\/cli-key\s+acc-test/,
    );
  });

  it("verifies the store on the server", async () => {
    const result = await auditCli(["verify", "--store", ...clientArgs()]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^Audit store device store\/ verified: 1 chain, \d+ records/);
    assert.match(
      lines[1] ?? "",
      /^ {2}node local: verified: \d+ records, \d+ checkpoints?, last seq/,
    );
  });

  it("verifies a file offline", async () => {
    await fixture.broker.close();
    const result = await auditCli(["verify", logPath, "--public-key", keyPath]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^Audit log verified: \d+ records, \d+ checkpoints/);
    assert.equal(result.stderr, "");
  });

  it("warns without a public key", async () => {
    const result = await auditCli(["verify", logPath]);
    assert.equal(result.status, 0);
    assert.match(result.stderr, /signatures were not checked/);
  });

  it("exits 1 for a tampered file", async () => {
    const lines = readLines(logPath);
    const tampered = join(fixture.dir, "tampered.log");
    writeFileSync(
      tampered,
      [lines[0], lines[2], ...lines.slice(3)].map((line) => `${line}\n`).join(""),
    );
    const result = await auditCli([
      "verify",
      tampered,
      "--public-key",
      keyPath,
      "--format",
      "json",
    ]);
    assert.equal(result.status, 1);
    const verdict = JSON.parse(result.stdout);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.firstBad.reason, "removed");
    assert.equal(verdict.firstBad.seq, 2);
  });

  it("exits 1 for a cut-short line", async () => {
    const tampered = join(fixture.dir, "cut.log");
    writeFileSync(tampered, `${readLines(logPath)[0]}\n`);
    appendFileSync(tampered, '{"type":"req');
    const result = await auditCli(["verify", tampered]);
    assert.equal(result.status, 1);
    assert.match(result.stdout, /TAMPERED: at line 2: malformed/);
  });

  it("fails for a missing file", async () => {
    const result = await auditCli(["verify", join(fixture.dir, "absent.log")]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /audit log file not found: .*absent\.log/);
  });

  it("strict mode rejects an unsigned end", async () => {
    const lines = readLines(logPath);
    const truncated = join(fixture.dir, "truncated.log");
    writeFileSync(
      truncated,
      lines
        .slice(0, -1)
        .map((line) => `${line}\n`)
        .join(""),
    );

    const lenient = await auditCli(["verify", truncated, "--public-key", keyPath]);
    assert.equal(lenient.status, 0, lenient.stderr);
    assert.match(lenient.stderr, /follow the last checkpoint/);

    const strict = await auditCli(["verify", truncated, "--public-key", keyPath, "--strict"]);
    assert.equal(strict.status, 1);
    assert.match(strict.stdout, /TAMPERED: record \d+ at line \d+: unsigned/);

    const whole = await auditCli(["verify", logPath, "--public-key", keyPath, "--strict"]);
    assert.equal(whole.status, 0, whole.stderr);
  });

  it("verifies rotated files in order", async () => {
    const lines = readLines(logPath);
    const older = join(fixture.dir, "rotated.log.1");
    const newer = join(fixture.dir, "rotated.log");
    writeFileSync(
      older,
      lines
        .slice(0, 2)
        .map((line) => `${line}\n`)
        .join(""),
    );
    writeFileSync(
      newer,
      lines
        .slice(2)
        .map((line) => `${line}\n`)
        .join(""),
    );

    const both = await auditCli(["verify", older, newer, "--public-key", keyPath, "--strict"]);
    assert.equal(both.status, 0, both.stdout + both.stderr);

    const alone = await auditCli(["verify", newer, "--public-key", keyPath]);
    assert.equal(alone.status, 1);
    const continued = await auditCli(["verify", newer, "--public-key", keyPath, "--continuation"]);
    assert.equal(continued.status, 0, continued.stdout + continued.stderr);

    const swapped = await auditCli(["verify", newer, older, "--public-key", keyPath]);
    assert.equal(swapped.status, 1);
    assert.match(swapped.stdout, /TAMPERED: record \d+ at line 1 of .*rotated\.log:/);
  });

  it("strict mode needs a public key", async () => {
    const result = await auditCli(["verify", logPath, "--strict"]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /--strict needs --public-key/);
  });
});

describe("audit CLI with several nodes", () => {
  let fixture: BrokerFixture;
  let app: FastifyInstance;
  let address: string;

  before(async () => {
    fixture = await openBroker({ checkpointInterval: 3 });
    ({ app } = await buildAuditApp(fixture));
    address = await app.listen({ host: "127.0.0.1", port: 0 });
    await fixture.broker.logRequest(requestEntry(1));
  });
  after(async () => {
    await app.close();
    await fixture.cleanup();
  });

  const clientArgs = () => ["--address", address, "--token", TOKEN];

  it("reports each node's chain and the tampered one", async () => {
    const other = new AuditBroker({ barrier: fixture.barrier, logger: silentLogger, nodeId: "b" });
    await other.open();
    await other.logRequest(requestEntry(1));
    await other.logRequest(requestEntry(2));
    await other.close();
    const key = "sys/audit/store/store/b/00000000000000000002";
    const stored = fixture.barrier.values.get(key);
    assert.ok(stored !== undefined);
    try {
      const verified = await auditCli(["verify", "--store", ...clientArgs()]);
      assert.equal(verified.status, 0, verified.stderr);
      assert.match(verified.stdout, /verified: 2 chains/);
      assert.match(
        verified.stdout,
        /\n {2}node b: verified: 2 records, 1 checkpoint, last seq 3\./,
      );

      const text = Buffer.from(stored).toString("utf8").replace("req-2", "req-9");
      fixture.barrier.values.set(key, Buffer.from(text, "utf8"));
      const tampered = await auditCli(["verify", "--store", ...clientArgs()]);
      assert.equal(tampered.status, 1);
      assert.match(
        tampered.stdout,
        /^Audit store device store\/ TAMPERED in node b, record 2: altered\./,
      );
      assert.match(tampered.stdout, /\n {2}node local: verified: /);
      assert.match(tampered.stdout, /\n {2}node b: TAMPERED: record 2 at line 2: altered/);

      const json = await auditCli(["verify", "--store", "--format", "json", ...clientArgs()]);
      assert.equal(json.status, 1);
      const verdict = JSON.parse(json.stdout);
      assert.equal(verdict.firstBad.node, "b");
      assert.equal(verdict.firstBad.seq, 2);
    } finally {
      fixture.barrier.values.set(key, stored);
    }
  });

  it("searches one node", async () => {
    const result = await auditCli([
      "search",
      "--node",
      "local",
      "--type",
      "request",
      ...clientArgs(),
    ]);
    assert.equal(result.status, 0, result.stderr);
    const rows = result.stdout.trim().split("\n").slice(2);
    assert.ok(rows.length > 0);
    for (const row of rows) assert.match(row, /^\S+\s+local\s+\d+\s+request/);
  });
});
