import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cli, runCli } from "../helpers/server-process.ts";
import { FakeDeviceServer } from "./fake-device-server.ts";

/** Polls `check` every 50 ms until it returns true, failing after `ms` with `what`. */
async function eventually(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("keyward agent command", () => {
  const server = new FakeDeviceServer("cli-1");
  const dir = mkdtempSync(join(tmpdir(), "keyward-agent-cli-"));
  const configFile = join(dir, "agent.json");
  const secretFile = join(dir, "radius.secret");

  before(async () => {
    await server.start();
    server.secrets = [{ name: "radius", version: 1, value: "Y2xpIHNlY3JldA==" }];
    writeFileSync(join(dir, "ca.pem"), server.caPem);
    writeFileSync(
      configFile,
      JSON.stringify({
        server: server.url,
        ca_file: "ca.pem",
        device: "cli-1",
        bootstrap_token: server.bootstrapToken,
        state_dir: "state",
        poll_wait: "10s",
        artifacts: [{ kind: "secret", name: "radius", path: secretFile }],
      }),
    );
  });
  after(() => server.stop());

  it("--once enrols and installs", async () => {
    const result = await cli(["agent", "--config", configFile, "--once"]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(readFileSync(secretFile, "utf8"), "Y2xpIHNlY3JldA==");
    const messages = result.stderr
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    assert.ok(messages.includes("enrolled"), result.stderr);
    assert.ok(messages.includes("installed artifact"), result.stderr);
    assert.ok(!result.stderr.includes(server.bootstrapToken.slice(4)));
    assert.deepEqual(server.applied, [{ id: "secret:radius", version: 1 }]);
  });

  it("SIGTERM stops a long poll", async () => {
    const child = runCli(["agent", "--config", configFile]);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const waiting = () =>
      server.requests.some(
        (request) =>
          request.path === "/v1/devices/self/state" &&
          request.query.get("wait") === "10" &&
          request.status === 0,
      );
    await eventually("a waiting long poll", 30_000, waiting);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"signal":"SIGTERM"/);
    assert.match(stderr, /"msg":"agent stopped"/);
  });

  it("invalid config names the field", async () => {
    const bad = join(dir, "bad.json");
    const config = JSON.parse(readFileSync(configFile, "utf8"));
    config.artifacts[0].mode = "0999";
    writeFileSync(bad, JSON.stringify(config));
    const result = await cli(["agent", "--config", bad, "--once"]);
    assert.equal(result.status, 1);
    assert.match(
      result.stderr,
      /^Error: "artifacts\[0\]\.mode" must be an octal permission string/,
    );
  });

  it("--once fails when unreachable", async () => {
    const offline = join(dir, "offline.json");
    const config = JSON.parse(readFileSync(configFile, "utf8"));
    config.server = "https://127.0.0.1:9";
    writeFileSync(offline, JSON.stringify(config));
    const result = await cli(["agent", "--config", offline, "--once"]);
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /"msg":"round failed"/);
    assert.match(result.stderr, /ECONNREFUSED/);
  });
});
