import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, type ServerProcess, startDevServer } from "../helpers/server-process.ts";

// The README's first session, run through the real CLI against a real dev server.
describe("CLI walkthrough", () => {
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startDevServer();
    env = { KEYWARD_ADDR: server.address, KEYWARD_TOKEN: server.rootToken };
  });
  after(() => server.stop());

  async function json(args: string[]) {
    const result = await cli([...args, "--format", "json"], env);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout);
  }

  it("prints the status as a table", async () => {
    const result = await cli(["status"], env);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Sealed\s+false/);
    assert.match(result.stdout, /Storage Type\s+sqlite/);
  });

  it("creates, encrypts, rotates, decrypts and rewraps", async () => {
    const plaintext = Buffer.from("card 4111").toString("base64");
    await json(["write", "transit/keys/payments", "type=aes256-gcm96"]);

    const encrypted = await json(["write", "transit/encrypt/payments", `plaintext=${plaintext}`]);
    const ciphertext = encrypted.data.ciphertext as string;
    assert.match(ciphertext, /^keyward:v1:/);

    await cli(["write", "transit/keys/payments/rotate"], env);
    const decrypted = await json(["write", "transit/decrypt/payments", `ciphertext=${ciphertext}`]);
    assert.equal(decrypted.data.plaintext, plaintext);

    const rewrapped = await json(["write", "transit/rewrap/payments", `ciphertext=${ciphertext}`]);
    assert.match(rewrapped.data.ciphertext, /^keyward:v2:/);

    const table = await cli(["read", "transit/keys/payments"], env);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /latest_version\s+2/);

    const list = await cli(["list", "transit/keys"], env);
    assert.match(list.stdout, /payments/);
  });

  it("issues a token limited by a policy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyward-policy-"));
    const file = join(dir, "payments.hcl");
    writeFileSync(file, 'path "transit/encrypt/payments" { capabilities = ["update"] }\n');
    const written = await cli(["write", "sys/policies/acl/payments", `policy=@${file}`], env);
    assert.equal(written.status, 0, written.stderr);
    const created = await json(["write", "auth/token/create", "policies=payments", "ttl=24h"]);
    const token = created.auth.client_token as string;
    rmSync(dir, { recursive: true, force: true });

    const limited = { ...env, KEYWARD_TOKEN: token };
    const plaintext = Buffer.from("limited").toString("base64");
    const allowed = await cli(
      ["write", "transit/encrypt/payments", `plaintext=${plaintext}`],
      limited,
    );
    assert.equal(allowed.status, 0, allowed.stderr);
    const denied = await cli(["read", "transit/keys/payments"], limited);
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /permission_denied/);
  });

  it("reads a field value from standard input", async () => {
    const plaintext = Buffer.from("from stdin").toString("base64");
    const result = await cli(
      ["write", "transit/encrypt/payments", "plaintext=-", "--format", "json"],
      env,
      plaintext,
    );
    assert.equal(result.status, 0, result.stderr);
    assert.match(JSON.parse(result.stdout).data.ciphertext, /^keyward:v2:/);
  });

  it("fails with a one-line error", async () => {
    const result = await cli(
      ["write", "transit/decrypt/payments", "ciphertext=not-a-ciphertext"],
      env,
    );
    assert.equal(result.status, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /^Error: .*\[HTTP 400\]/);
  });

  it("rejects dot segments in paths", async () => {
    const result = await cli(["read", "transit/keys/../../sys/seal-status"], env);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /"\." and "\.\." segments/);
  });

  it("fails clearly without a server", async () => {
    const result = await cli(["status"], { KEYWARD_ADDR: "http://127.0.0.1:1" });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /connection refused/);
  });

  it("keeps keys across a restart", async () => {
    await server.stop();
    server = await startDevServer({ dataDir: server.dataDir });
    env = { KEYWARD_ADDR: server.address, KEYWARD_TOKEN: server.rootToken };
    const key = await json(["read", "transit/keys/payments"]);
    assert.equal(key.data.latest_version, 2);
  });
});
