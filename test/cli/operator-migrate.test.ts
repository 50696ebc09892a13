import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { callServer } from "../helpers/http.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { cli, startServerProcess } from "../helpers/server-process.ts";

/** Starts a sealed server on `storage`, unseals it with `shares` and returns it. */
async function startUnsealed(dataDir: string, storage: string, shares: string[]) {
  const server = await startServerProcess([
    "--data-dir",
    dataDir,
    "--storage",
    storage,
    "--log-level",
    "warn",
  ]);
  for (const key of shares) {
    const result = await callServer(server.address, "PUT", "sys/unseal", { key });
    assert.equal(result.status, 200, JSON.stringify(result.body));
  }
  const status = await callServer(server.address, "GET", "sys/seal-status");
  assert.equal(status.body.sealed, false, "the original shares unseal the copy");
  return { server, storageType: status.body.storage_type as string };
}

async function decrypt(address: string, token: string, key: string, ciphertext: string) {
  const result = await callServer(address, "POST", `transit/decrypt/${key}`, { ciphertext }, token);
  assert.equal(result.status, 200, JSON.stringify(result.body));
  return result.body.data.plaintext as string;
}

describe("operator migrate", { skip: postgresSkipReason() }, () => {
  const folder = mkdtempSync(join(tmpdir(), "keyward-migrate-"));
  const sqliteDir = join(folder, "sqlite-data");
  const backDir = join(folder, "back-data");
  let postgres: PostgresServer;
  let postgresUrl: string;
  let shares: string[] = [];
  let rootToken = "";
  const plaintext = Buffer.from("made before the migration").toString("base64");
  let ciphertext = "";
  let ciphertextOnPostgres = "";

  before(async () => {
    postgres = await startPostgres();
    postgresUrl = postgres.url;
  });
  after(async () => {
    await postgres?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("prepares a SQLite installation", async () => {
    const server = await startServerProcess(["--data-dir", sqliteDir, "--log-level", "warn"]);
    try {
      const init = await callServer(server.address, "PUT", "sys/init", {
        secret_shares: 3,
        secret_threshold: 2,
      });
      assert.equal(init.status, 200, JSON.stringify(init.body));
      shares = init.body.keys;
      rootToken = init.body.root_token;
      for (const key of shares.slice(0, 2)) {
        await callServer(server.address, "PUT", "sys/unseal", { key });
      }
      await callServer(server.address, "POST", "transit/keys/ledger", {}, rootToken);
      await callServer(server.address, "POST", "transit/keys/ledger/rotate", {}, rootToken);
      const encrypted = await callServer(
        server.address,
        "POST",
        "transit/encrypt/ledger",
        { plaintext },
        rootToken,
      );
      assert.equal(encrypted.status, 200, JSON.stringify(encrypted.body));
      ciphertext = encrypted.body.data.ciphertext;
      assert.match(ciphertext, /:v2:/);
    } finally {
      await server.stop();
    }
  });

  it("copies SQLite to PostgreSQL", async () => {
    const result = await cli(["operator", "migrate", "--from", sqliteDir, "--to", postgresUrl]);
    assert.equal(result.status, 0, result.stderr);
    const copied = /Copied (\d+) entries from sqlite:\S+ to postgres:\/\/127\.0\.0\.1:\d+\//.exec(
      result.stdout,
    );
    assert.ok(copied, result.stdout);
    assert.ok(Number(copied[1]) > 0);
    assert.match(result.stdout, new RegExp(`Verified ${copied[1]} entries`));
    assert.ok(
      !result.stdout.includes(new URL(postgresUrl).password),
      "the output has the password",
    );
  });

  it("rejects a non-empty destination without force", async () => {
    const result = await cli(["operator", "migrate", "--from", sqliteDir, "--to", postgresUrl]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /destination storage is not empty/);
    assert.ok(!result.stderr.includes(new URL(postgresUrl).password));

    const forced = await cli([
      "operator",
      "migrate",
      "--from",
      sqliteDir,
      "--to",
      postgresUrl,
      "--force",
    ]);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /Deleted \d+ entries/);
  });

  it("unseals and decrypts on PostgreSQL", async () => {
    const dataDir = join(folder, "postgres-node");
    const { server, storageType } = await startUnsealed(dataDir, postgresUrl, shares.slice(1, 3));
    try {
      assert.equal(storageType, "postgresql");
      assert.equal(await decrypt(server.address, rootToken, "ledger", ciphertext), plaintext);
      const encrypted = await callServer(
        server.address,
        "POST",
        "transit/encrypt/ledger",
        { plaintext },
        rootToken,
      );
      assert.equal(encrypted.status, 200);
      ciphertextOnPostgres = encrypted.body.data.ciphertext;
    } finally {
      await server.stop();
    }
  });

  it("copies PostgreSQL back to SQLite", async () => {
    const result = await cli(["operator", "migrate", "--from", postgresUrl, "--to", backDir]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(
      result.stdout,
      /Copied \d+ entries from postgres:\/\/\S+ to sqlite:\S+keyward\.db/,
    );

    const { server, storageType } = await startUnsealed(
      join(folder, "unused"),
      backDir,
      shares.slice(0, 2),
    );
    try {
      assert.equal(storageType, "sqlite");
      assert.equal(await decrypt(server.address, rootToken, "ledger", ciphertext), plaintext);
      assert.equal(
        await decrypt(server.address, rootToken, "ledger", ciphertextOnPostgres),
        plaintext,
      );
    } finally {
      await server.stop();
    }
  });

  const failures: Array<[string, () => Promise<string>, RegExp]> = [
    ["fail missing source file", async () => join(folder, "missing"), /does not exist/],
    ["fail empty source", () => postgres.createDatabase(), /source storage contains no entries/],
  ];
  for (const [title, source, message] of failures) {
    it(title, async () => {
      const destination = join(folder, "never-created");
      const result = await cli([
        "operator",
        "migrate",
        "--from",
        await source(),
        "--to",
        destination,
      ]);
      assert.equal(result.status, 1);
      assert.match(result.stderr, message);
      assert.ok(!existsSync(destination), "a failed migrate created its destination");
    });
  }

  it("fail same storage", async () => {
    const args = ["--from", sqliteDir, "--to", `sqlite:${sqliteDir}/keyward.db`];
    const result = await cli(["operator", "migrate", ...args]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /same storage/);
  });

  it("fail without --to", async () => {
    const result = await cli(["operator", "migrate", "--from", sqliteDir]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /--to/);
  });
});
