import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { makeLoopbackCertificate } from "../helpers/loopback-certificate.ts";
import { requirePeer } from "../helpers/peers.ts";
import { cli, runCli } from "../helpers/server-process.ts";

/** Starts `keyward server` without dev mode and waits for its address. */
async function startServer(args: string[]) {
  const child = runCli(["server", "--log-level", "warn", ...args]);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    child.stdout?.on("data", () => {
      const match = /listening on (\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return {
    address,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

describe("operator commands", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-operator-"));
  let server: Awaited<ReturnType<typeof startServer>>;
  let env: NodeJS.ProcessEnv;
  let shares: string[] = [];

  before(async () => {
    server = await startServer(["--listen", "127.0.0.1:0", "--data-dir", dataDir]);
    env = { KEYWARD_ADDR: server.address };
  });
  after(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("initialises and prints shares once", async () => {
    const status = await cli(["status"], env);
    assert.equal(status.status, 2, "an uninitialised server is sealed");

    const result = await cli(
      ["operator", "init", "--key-shares", "3", "--key-threshold", "2", "--format", "json"],
      env,
    );
    assert.equal(result.status, 0, result.stderr);
    const body = JSON.parse(result.stdout);
    assert.equal(body.keys.length, 3);
    shares = body.keys;
    env.KEYWARD_TOKEN = body.root_token;
  });

  it("unseals from arguments and standard input", async () => {
    const first = await cli(["operator", "unseal", shares[0] ?? ""], env);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /Unseal Progress\s+1\/2/);
    const second = await cli(["operator", "unseal"], env, `${shares[1]}\n`);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /Sealed\s+false/);
    assert.equal((await cli(["status"], env)).status, 0);
  });

  it("rejects an invalid share count", async () => {
    const result = await cli(["operator", "init", "--key-shares", "0"], env);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /--key-shares/);
  });

  it("rotates the barrier key", async () => {
    const result = await cli(["operator", "rotate", "--format", "json"], env);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).data.term, 2);
  });

  it("rekeys and unseals with new shares", async () => {
    const started = await cli(
      [
        "operator",
        "rekey",
        "--init",
        "--key-shares",
        "2",
        "--key-threshold",
        "2",
        "--format",
        "json",
      ],
      env,
    );
    assert.equal(started.status, 0, started.stderr);
    const nonce = JSON.parse(started.stdout).nonce as string;
    await cli(["operator", "rekey", "--nonce", nonce, shares[0] ?? ""], env);
    const done = await cli(
      ["operator", "rekey", "--nonce", nonce, "--format", "json", shares[2] ?? ""],
      env,
    );
    assert.equal(done.status, 0, done.stderr);
    const newShares = JSON.parse(done.stdout).keys as string[];
    assert.equal(newShares.length, 2);

    const sealed = await cli(["operator", "seal"], env);
    assert.equal(sealed.status, 0, sealed.stderr);
    assert.equal((await cli(["status"], env)).status, 2);
    for (const share of newShares) await cli(["operator", "unseal", share], env);
    assert.equal((await cli(["status"], env)).status, 0);
    shares = newShares;
  });

  it("rekeys with verification of new shares", async () => {
    const started = await cli(
      [
        "operator",
        "rekey",
        "--init",
        "--verify",
        "--key-shares",
        "3",
        "--key-threshold",
        "2",
        "--format",
        "json",
      ],
      env,
    );
    assert.equal(started.status, 0, started.stderr);
    const startedBody = JSON.parse(started.stdout);
    assert.equal(startedBody.verification_required, true);
    const nonce = startedBody.nonce as string;
    await cli(["operator", "rekey", "--nonce", nonce, shares[0] ?? ""], env);
    const done = await cli(["operator", "rekey", "--nonce", nonce, shares[1] ?? ""], env);
    assert.equal(done.status, 0, done.stderr);
    const fresh = [...done.stdout.matchAll(/Unseal Key \d+: (\S+)/g)].map((match) => match[1]!);
    assert.equal(fresh.length, 3);
    assert.match(done.stdout, /until then the current shares stay in force/);
    const verificationNonce = /--verify --nonce (\S+)/.exec(done.stdout)?.[1];
    assert.ok(verificationNonce, done.stdout);

    const status = await cli(
      ["operator", "rekey", "--verify", "--status", "--format", "json"],
      env,
    );
    assert.equal(status.status, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), {
      nonce: verificationNonce,
      started: true,
      t: 2,
      n: 3,
      progress: 0,
    });
    const noNonce = await cli(["operator", "rekey", "--verify", fresh[0]!], env);
    assert.equal(noNonce.status, 1);
    assert.match(noNonce.stderr, /--nonce is required/);

    const restarted = await cli(
      ["operator", "rekey", "--verify", "--cancel", "--format", "json"],
      env,
    );
    assert.equal(restarted.status, 0, restarted.stderr);
    const restartedBody = JSON.parse(restarted.stdout);
    assert.equal(restartedBody.progress, 0);
    assert.notEqual(restartedBody.nonce, verificationNonce);

    await cli(["operator", "rekey", "--verify", "--nonce", restartedBody.nonce, fresh[0]!], env);
    const verified = await cli(
      ["operator", "rekey", "--verify", "--nonce", restartedBody.nonce],
      env,
      `${fresh[2]}\n`,
    );
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /Success! The new shares are verified/);

    // test/api/sys-rekey-verify.test.ts checks that the previous shares stop working.
    assert.equal((await cli(["operator", "seal"], env)).status, 0);
    for (const share of fresh.slice(1)) await cli(["operator", "unseal", share], env);
    assert.equal((await cli(["status"], env)).status, 0);
  });
});

describe("server command", () => {
  it("help lists every config setting", async () => {
    const result = await cli(["server", "--help"]);
    assert.equal(result.status, 0, result.stderr);
    const help = result.stdout.replace(/\s+/g, " ");
    assert.match(help, /max_request_size, job_interval_ms, kmip_listen/);
    assert.match(help, /--job-interval-ms <ms>/);
    assert.match(help, /\[env KEYWARD_JOB_INTERVAL_MS\] \(default 60000\)/);
  });

  it("refuses a non-loopback address without TLS", async () => {
    const result = await cli([
      "server",
      "--listen",
      "0.0.0.0:0",
      "--data-dir",
      mkdtempSync(join(tmpdir(), "kw-")),
    ]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /without TLS/);
  });

  it("rejects an unknown config file field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kw-config-"));
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify({ listen: "127.0.0.1:0", lisen: "x" }));
    const result = await cli(["server", "--config", file]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /unknown field "lisen"/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves TLS with a certificate from openssl", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const dir = mkdtempSync(join(tmpdir(), "kw-tls-"));
    const { certFile: cert, keyFile: key } = makeLoopbackCertificate(dir);

    const tls = await startServer([
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      join(dir, "data"),
      "--tls-cert-file",
      cert,
      "--tls-key-file",
      key,
    ]);
    try {
      assert.match(tls.address, /^https:/);
      const trusted = await cli(["status", "--format", "json"], {
        KEYWARD_ADDR: tls.address,
        KEYWARD_CACERT: cert,
      });
      // Exit status 2: reachable and sealed, as a new server is.
      assert.equal(trusted.status, 2, trusted.stderr);
      const untrusted = await cli(["status"], { KEYWARD_ADDR: tls.address });
      assert.equal(untrusted.status, 1);
      assert.match(
        untrusted.stderr,
        /cannot verify the TLS certificate of https:\/\/127\.0\.0\.1:/,
      );
      assert.match(untrusted.stderr, /Set KEYWARD_CACERT or --ca-cert to a PEM file/);
      const otherName = await cli(["status"], {
        KEYWARD_ADDR: tls.address.replace("127.0.0.1", "localhost"),
        KEYWARD_CACERT: cert,
      });
      assert.equal(otherName.status, 1);
      assert.match(otherName.stderr, /that the certificate names/);
    } finally {
      await tls.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
