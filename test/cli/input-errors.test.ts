import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileLines } from "../../src/cli/commands/audit.ts";
import { apiPath, parseFields } from "../../src/cli/commands/paths.ts";
import { cli } from "../helpers/server-process.ts";

const directory = mkdtempSync(join(tmpdir(), "keyward-cli-input-"));
after(() => rmSync(directory, { recursive: true, force: true }));

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const result: string[] = [];
  for await (const line of lines) result.push(line);
  return result;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return `127.0.0.1:${address.port}`;
}

/** Asserts a failed CLI run: exit status 1, one line on stderr matching `message`, no stack trace. */
function assertOneLineError(result: Awaited<ReturnType<typeof cli>>, message: RegExp) {
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, message);
  assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
}

describe("cli api paths", () => {
  it("rejects dot segments the URL parser resolves", () => {
    for (const path of ["sys/%2e%2e/x", "sys/.%2E/x", "sys/%2e/x", "sys\\..\\x", "a/b\\.\\c"]) {
      assert.throws(() => apiPath(path), /"\." and "\.\." segments are not allowed/, path);
    }
  });

  it("keeps other names with dots", () => {
    assert.equal(apiPath("transit/keys/a.b"), "/v1/transit/keys/a.b");
    assert.equal(apiPath("sys/..."), "/v1/sys/...");
    assert.equal(apiPath("/v1/transit/keys/%2e%2ex"), "/v1/transit/keys/%2e%2ex");
  });
});

describe("cli key=value fields", () => {
  it("keeps a field named __proto__", async () => {
    const fields = await parseFields(['__proto__={"a":1}', "type=aes256-gcm96"]);
    assert.equal(JSON.stringify(fields), '{"__proto__":{"a":1},"type":"aes256-gcm96"}');
    assert.equal(Object.getPrototypeOf(fields), Object.prototype);
  });

  it("names the field of a missing file", async () => {
    await assert.rejects(parseFields([`key=@${join(directory, "absent")}`]), {
      message: /cannot read the file of field "key" ".*absent": no such file/,
    });
  });

  it("names the field of an empty file path", async () => {
    await assert.rejects(parseFields(["key=@"]), {
      message: /the file of field "key" is missing/,
    });
  });

  it("reports a directory", async () => {
    await assert.rejects(parseFields([`key=@${directory}`]), { message: /it is a directory/ });
  });
});

describe("cli audit log lines", () => {
  it("splits lines across read chunks", async () => {
    // The stream reads 64 KiB chunks, so these lines cross chunk ends, one of them inside "é".
    const long = "x".repeat(65_535);
    const path = join(directory, "lines.log");
    writeFileSync(path, `${long}é\r\nsecond\n\n${"y".repeat(70_000)}\nlast`);
    const lines = await collect(fileLines(path));
    assert.deepEqual(
      lines.map((line) => line.length),
      [65_537, 6, 0, 70_000, 4],
    );
    assert.equal(lines[0], `${long}é\r`);
    assert.equal(lines[4], "last");
  });

  it("rejects a line above the maximum length", async () => {
    const path = join(directory, "long-line.log");
    writeFileSync(path, `short\n${"z".repeat(200_000)}\n`);
    await assert.rejects(collect(fileLines(path, 100_000)), {
      message: /line 2 of .*long-line\.log is longer than 100000 characters/,
    });
  });

  it("rejects a final line above the maximum length", async () => {
    const path = join(directory, "long-end.log");
    writeFileSync(path, "z".repeat(200_000));
    await assert.rejects(collect(fileLines(path, 100_000)), { message: /line 1 of/ });
  });
});

describe("cli file and connection errors", () => {
  it("reports a CA file without certificates", async () => {
    const path = join(directory, "not-a-ca.pem");
    writeFileSync(path, "not a certificate\n");
    const result = await cli([
      "read",
      "sys/mounts",
      "--address",
      "https://127.0.0.1:1",
      "--ca-cert",
      path,
      "--token",
      "kw.input-errors-token",
    ]);
    assertOneLineError(
      result,
      /CA certificate file ".*not-a-ca\.pem".* contains no PEM certificate/,
    );
    assert.doesNotMatch(result.stderr, /input-errors-token/);
  });

  it("reports a public key file that is missing", async () => {
    const log = join(directory, "empty.log");
    writeFileSync(log, "");
    const result = await cli([
      "audit",
      "verify",
      log,
      "--public-key",
      join(directory, "absent.pem"),
    ]);
    assertOneLineError(
      result,
      /cannot read the public key file \(--public-key\) ".*absent\.pem": no such file/,
    );
  });

  it("reports an audit log path that is a directory", async () => {
    const result = await cli(["audit", "verify", directory]);
    assertOneLineError(result, /cannot read the audit log file ".*": it is a directory/);
  });

  it("suggests http for an https address of a plain HTTP server", async () => {
    const server = createHttpServer((_request, response) => response.end("{}"));
    const address = await listen(server);
    try {
      const result = await cli(["read", "sys/mounts", "--address", `https://${address}`]);
      assertOneLineError(
        result,
        /TLS handshake with https:\/\/.* failed .*use an http:\/\/ address/,
      );
    } finally {
      server.close();
    }
  });

  it("suggests https when the server drops a plain HTTP request", async () => {
    // A TLS server resets a connection that opens with plain HTTP, as this one does.
    const server = createTcpServer((socket) => socket.once("data", () => socket.resetAndDestroy()));
    const address = await listen(server);
    try {
      const result = await cli(["read", "sys/mounts", "--address", `http://${address}`]);
      assertOneLineError(result, /closed the connection without an HTTP response.*https:\/\//);
    } finally {
      server.close();
    }
  });
});
