import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cli, type PlainServerProcess, startServerProcess } from "../helpers/server-process.ts";

describe("keyward operator share count flags", () => {
  let server: PlainServerProcess | undefined;
  const folder = mkdtempSync(join(tmpdir(), "keyward-breakit10-operator-"));

  after(async () => {
    await server?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  // The server's own parsers take decimal digits only (see the health status
  // codes), so a count written in hex or with an exponent is a typo to reject.
  it("hex share count is rejected", async () => {
    // Port 9 on loopback has no listener: a count that passes parsing fails to connect instead.
    const result = await cli(
      ["operator", "rekey", "--init", "--key-shares", "0x3", "--key-threshold", "2"],
      { KEYWARD_ADDR: "http://127.0.0.1:9", KEYWARD_TOKEN: "unused" },
    );
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, /--key-shares must be an integer from 1 to 255, got "0x3"/);
  });

  // --key-threshold defaults to 3, so `init --key-shares 1` fails. The message
  // must name the flag the operator can change, not the API field behind it.
  it("init error names the CLI flag", async () => {
    server = await startServerProcess(["--log-level", "warn", "--data-dir", join(folder, "data")]);
    const result = await cli(["operator", "init", "--key-shares", "1"], {
      KEYWARD_ADDR: server.address,
    });
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stderr, /--key-threshold/, result.stderr);
  });
});
