import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { callServer } from "../helpers/http.ts";
import { type PlainServerProcess, startServerProcess } from "../helpers/server-process.ts";

/** Every share a test saw, to check that none reaches the server's log or an error body. */
const secrets: string[] = [];

function remember(body: { keys: string[]; keys_base64: string[] }): string[] {
  secrets.push(...body.keys, ...body.keys_base64);
  return body.keys;
}

describe("sys rekey verification over HTTP", () => {
  const folder = mkdtempSync(join(tmpdir(), "keyward-rekey-verify-"));
  const dataDir = join(folder, "data");
  const auditPath = join(folder, "audit.log");
  let server: PlainServerProcess;
  let rootToken = "";
  /** The shares in force. */
  let current: string[] = [];
  /** The new shares of the rekey in progress, and its verification nonce. */
  let fresh: string[] = [];
  let verificationNonce = "";
  /** The output of servers stopped before the current one. */
  const earlierOutput: string[] = [];

  function start(): Promise<PlainServerProcess> {
    return startServerProcess(["--data-dir", dataDir, "--log-level", "debug"]);
  }

  const call = (method: string, path: string, body?: unknown, token?: string) =>
    callServer(server.address, method, path, body, token);

  async function unseal(shares: string[]) {
    let status = (await call("GET", "sys/seal-status")).body;
    for (const key of shares) {
      const response = await call("PUT", "sys/unseal", { key });
      if (response.status !== 200) return response;
      status = response.body;
    }
    return { status: 200, body: status };
  }

  /** Starts a rekey to 5 shares with threshold 3 that requires verification, and submits a threshold of current shares. */
  async function pendingRekey() {
    const started = await call("PUT", "sys/rekey/init", {
      secret_shares: 5,
      secret_threshold: 3,
      require_verification: true,
    });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.verification_required, true);
    assert.equal(started.body.verification_nonce, undefined);
    const nonce = started.body.nonce as string;
    const threshold = (await call("GET", "sys/seal-status")).body.t as number;
    let done: Awaited<ReturnType<typeof call>> | undefined;
    for (const [index, key] of current.slice(0, threshold).entries()) {
      done = await call("PUT", "sys/rekey/update", { key, nonce });
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.complete, index === threshold - 1 ? true : undefined);
    }
    fresh = remember(done!.body);
    verificationNonce = done!.body.verification_nonce;
    return { nonce, done: done!.body };
  }

  before(async () => {
    server = await start();
    const init = await call("PUT", "sys/init", { secret_shares: 3, secret_threshold: 2 });
    assert.equal(init.status, 200, JSON.stringify(init.body));
    current = remember(init.body);
    rootToken = init.body.root_token;
    assert.equal((await unseal(current.slice(0, 2))).body.sealed, false);
    const audit = await call(
      "PUT",
      "sys/audit/file",
      { type: "file", options: { file_path: auditPath } },
      rootToken,
    );
    assert.equal(audit.status, 204, JSON.stringify(audit.body));
  });

  after(async () => {
    await server?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("verify without a rekey is rejected", async () => {
    const cases = [
      await call("GET", "sys/rekey/verify"),
      await call("PUT", "sys/rekey/verify", { key: current[0], nonce: "nonce" }),
      await call("DELETE", "sys/rekey/verify"),
    ];
    for (const response of cases) {
      assert.equal(response.status, 409, JSON.stringify(response.body));
      assert.equal(response.body.code, "invalid_state");
    }
  });

  it("rekey init rejects a non-boolean require_verification", async () => {
    const response = await call("PUT", "sys/rekey/init", {
      secret_shares: 3,
      secret_threshold: 2,
      require_verification: "sometimes",
    });
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.equal(response.body.code, "invalid_field");
    assert.equal(response.body.field, "require_verification");
    assert.equal((await call("GET", "sys/rekey/init")).body.started, false);
  });

  it("current shares return new shares pending verification", async () => {
    const { nonce, done } = await pendingRekey();
    assert.equal(done.complete, true);
    assert.equal(done.keys.length, 5);
    assert.equal(done.keys_base64.length, 5);
    assert.equal(done.verification_required, true);
    assert.equal(typeof done.verification_nonce, "string");
    assert.notEqual(done.verification_nonce, nonce);

    const status = await call("GET", "sys/rekey/init");
    assert.equal(status.body.started, true);
    assert.equal(status.body.nonce, nonce);
    assert.equal(status.body.t, 3);
    assert.equal(status.body.n, 5);
    assert.equal(status.body.progress, 0);
    assert.equal(status.body.verification_required, true);
    assert.equal(status.body.verification_nonce, verificationNonce);

    const more = await call("PUT", "sys/rekey/update", { key: current[2], nonce });
    assert.equal(more.status, 409, JSON.stringify(more.body));
    assert.equal(more.body.code, "invalid_state");

    const seal = await call("GET", "sys/seal-status");
    assert.equal(seal.body.t, 2, "the current threshold stays until verification");
    assert.equal(seal.body.n, 3);
  });

  it("verify rejects bad input", async () => {
    const cases: Array<{ body: unknown; code: string; field: string }> = [
      { body: { key: fresh[0], nonce: "another nonce" }, code: "invalid_field", field: "nonce" },
      { body: { key: current[0], nonce: verificationNonce }, code: "invalid_field", field: "key" },
      {
        body: { key: "zz-not-a-share", nonce: verificationNonce },
        code: "invalid_field",
        field: "key",
      },
      { body: { key: 12345, nonce: verificationNonce }, code: "invalid_field", field: "key" },
      { body: { key: "", nonce: verificationNonce }, code: "invalid_field", field: "key" },
      { body: { nonce: verificationNonce }, code: "missing_field", field: "key" },
      { body: { key: fresh[0] }, code: "missing_field", field: "nonce" },
      {
        body: { key: fresh[0], nonce: verificationNonce, backup: true },
        code: "unknown_field",
        field: "backup",
      },
    ];
    for (const { body, code, field } of cases) {
      const response = await call("PUT", "sys/rekey/verify", body);
      const label = `${JSON.stringify(body)} -> ${JSON.stringify(response.body)}`;
      assert.equal(response.status, 400, label);
      assert.equal(response.body.code, code, label);
      assert.equal(response.body.field, field, label);
      for (const secret of secrets) {
        assert.ok(!JSON.stringify(response.body).includes(secret), "no share in an error body");
      }
    }

    const notJson = await fetch(`${server.address}/v1/sys/rekey/verify`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { code: string }).code, "invalid_json");

    const status = await call("GET", "sys/rekey/verify");
    assert.equal(status.status, 200);
    assert.equal(status.body.progress, 0, "rejected shares do not count");
  });

  it("verify counts shares and restarts", async () => {
    const first = await call("PUT", "sys/rekey/verify", {
      key: fresh[0],
      nonce: verificationNonce,
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body, {
      nonce: verificationNonce,
      started: true,
      t: 3,
      n: 5,
      progress: 1,
    });
    const base64 = Buffer.from(fresh[0]!, "hex").toString("base64");
    const repeated = await call("PUT", "sys/rekey/verify", {
      key: base64,
      nonce: verificationNonce,
    });
    assert.equal(repeated.status, 400, JSON.stringify(repeated.body));
    assert.equal(repeated.body.code, "invalid_field");
    assert.equal(repeated.body.field, "key");

    const restarted = await call("DELETE", "sys/rekey/verify");
    assert.equal(restarted.status, 200, JSON.stringify(restarted.body));
    assert.equal(restarted.body.progress, 0);
    assert.equal(restarted.body.started, true);
    assert.notEqual(restarted.body.nonce, verificationNonce);
    const stale = await call("PUT", "sys/rekey/verify", {
      key: fresh[1],
      nonce: verificationNonce,
    });
    assert.equal(stale.status, 400);
    assert.equal(stale.body.field, "nonce");
    verificationNonce = restarted.body.nonce;
    assert.equal((await call("GET", "sys/rekey/init")).body.verification_nonce, verificationNonce);
  });

  it("seal drops new shares and keeps current ones", async () => {
    const sealed = await call("PUT", "sys/seal", {}, rootToken);
    assert.equal(sealed.status, 204, JSON.stringify(sealed.body));
    const wrong = await unseal(fresh.slice(0, 2));
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.equal(wrong.body.code, "invalid_shares");
    assert.equal((await unseal(current.slice(1, 3))).body.sealed, false);

    assert.equal((await call("GET", "sys/rekey/init")).body.started, false);
    const verify = await call("GET", "sys/rekey/verify");
    assert.equal(verify.status, 409);
    assert.equal(verify.body.code, "invalid_state");
  });

  it("verified new shares replace current ones", async () => {
    await pendingRekey();
    let last: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };
    for (const key of [fresh[4], fresh[1], fresh[2]]) {
      last = await call("PUT", "sys/rekey/verify", { key, nonce: verificationNonce });
      assert.equal(last.status, 200, JSON.stringify(last.body));
    }
    assert.deepEqual(last.body, { nonce: verificationNonce, complete: true });
    assert.equal((await call("GET", "sys/rekey/init")).body.started, false);
    assert.equal((await call("GET", "sys/rekey/verify")).status, 409);
    const status = await call("GET", "sys/seal-status");
    assert.equal(status.body.t, 3);
    assert.equal(status.body.n, 5);

    const sealed = await call("PUT", "sys/seal", {}, rootToken);
    assert.equal(sealed.status, 204);
    const old = await unseal(current);
    assert.equal(old.status, 400, "the previous shares no longer unseal");
    assert.equal(old.body.code, "invalid_shares");
    assert.equal((await unseal(fresh.slice(2, 5))).body.sealed, false);
    current = fresh;
  });

  it("restart drops new shares", async () => {
    await pendingRekey();
    const pending = fresh;
    earlierOutput.push(server.output());
    await server.stop();
    server = await start();

    const wrong = await unseal(pending.slice(0, 3));
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.equal(wrong.body.code, "invalid_shares");
    assert.equal((await unseal(current.slice(0, 3))).body.sealed, false);
    assert.equal((await call("GET", "sys/rekey/init")).body.started, false);
    assert.equal((await call("GET", "sys/rekey/verify")).status, 409);
  });

  it("server and audit logs contain no share", () => {
    const output = [...earlierOutput, server.output()].join("\n");
    assert.match(output, /sys\/rekey\/verify/, "the log has the verification requests");
    for (const secret of secrets) assert.ok(!output.includes(secret), "no share in the log");

    const audit = readFileSync(auditPath, "utf8");
    assert.match(audit, /sys\/rekey\/verify/, "the audit log has the verification requests");
    for (const secret of secrets) assert.ok(!audit.includes(secret), "no share in the audit log");
  });
});
