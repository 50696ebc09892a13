import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { removeStaleCandidates, writeFileAtomic } from "../../src/agent/atomic-file.ts";
import { REPO_ROOT } from "../helpers/server-process.ts";

const isRoot = process.getuid?.() === 0;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "keyward-agent-atomic-"));
}

const permissions = (path: string) => statSync(path).mode & 0o7777;

describe("atomic file install", () => {
  it("writes content with the mode", async () => {
    const dir = tempDir();
    const target = join(dir, "wg0.conf");
    await writeFileAtomic(target, "new\n", { mode: 0o640 });
    assert.equal(readFileSync(target, "utf8"), "new\n");
    assert.equal(permissions(target), 0o640);
    await writeFileAtomic(target, "newer\n", { mode: 0o600 });
    assert.equal(readFileSync(target, "utf8"), "newer\n");
    assert.equal(permissions(target), 0o600);
    assert.deepEqual(readdirSync(dir), ["wg0.conf"]);
  });

  it("mode ignores the umask", async () => {
    const dir = tempDir();
    const target = join(dir, "shared");
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(target, "x", { mode: 0o644 });
    } finally {
      process.umask(previous);
    }
    assert.equal(permissions(target), 0o644);
  });

  it("candidate has mode before validation", async () => {
    const dir = tempDir();
    const target = join(dir, "wg0.conf");
    let seen: { mode: number; content: string; name: string } | undefined;
    await writeFileAtomic(target, "content", {
      mode: 0o600,
      validate: async (candidate) => {
        seen = {
          mode: permissions(candidate),
          content: readFileSync(candidate, "utf8"),
          name: candidate.slice(dir.length + 1),
        };
      },
    });
    assert.equal(seen?.mode, 0o600);
    assert.equal(seen?.content, "content");
    // wg-quick accepts a file name of at most 15 characters before ".conf".
    assert.match(seen?.name ?? "", /^\.kw[0-9a-f]{10}\.conf$/);
  });

  it("sets owner and group", async (t) => {
    if (!isRoot) {
      t.skip("chown to another user needs root");
      return;
    }
    const dir = tempDir();
    const target = join(dir, "secret");
    await writeFileAtomic(target, "x", { mode: 0o640, uid: 4321, gid: 8765 });
    const stat = statSync(target);
    assert.equal(stat.uid, 4321);
    assert.equal(stat.gid, 8765);
    assert.equal(stat.mode & 0o7777, 0o640);
  });

  it("rejected candidate keeps old file", async () => {
    const dir = tempDir();
    const target = join(dir, "wg0.conf");
    writeFileSync(target, "old\n", { mode: 0o600 });
    await assert.rejects(
      writeFileAtomic(target, "bad\n", {
        mode: 0o600,
        validate: async () => {
          throw new Error("check failed");
        },
      }),
      /check failed/,
    );
    assert.equal(readFileSync(target, "utf8"), "old\n");
    assert.deepEqual(readdirSync(dir), ["wg0.conf"]);
  });

  it("crash before rename keeps old file", () => {
    const dir = tempDir();
    const target = join(dir, "wg0.conf");
    writeFileSync(target, "old\n", { mode: 0o600 });
    // The child writes a candidate and is killed with SIGKILL from inside the
    // validation step, between the synced write and the rename.
    const script = join(dir, "crash.mts");
    writeFileSync(
      script,
      `import { writeFileAtomic } from ${JSON.stringify(join(REPO_ROOT, "src/agent/atomic-file.ts"))};
await writeFileAtomic(${JSON.stringify(target)}, "new\\n", {
  mode: 0o600,
  validate: async () => { process.kill(process.pid, "SIGKILL"); await new Promise(() => {}); },
});
`,
    );
    const result = spawnSync(process.execPath, ["--import", "tsx", script], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    });
    assert.equal(result.signal, "SIGKILL", result.stderr);
    assert.equal(readFileSync(target, "utf8"), "old\n");
    const leftovers = readdirSync(dir).filter((name) => name.startsWith(".kw"));
    assert.equal(leftovers.length, 1);
    assert.equal(readFileSync(join(dir, leftovers[0] as string), "utf8"), "new\n");
  });

  it("stale candidates are removed", async () => {
    const dir = tempDir();
    const target = join(dir, "wg0.conf");
    writeFileSync(join(dir, ".kw0123456789.conf"), "half");
    writeFileSync(join(dir, ".kw0123456789.key"), "other extension");
    writeFileSync(join(dir, "wg1.conf"), "unrelated");
    writeFileSync(join(dir, ".kwnothex00000.conf"), "not ours");
    await removeStaleCandidates(target);
    assert.deepEqual(readdirSync(dir).sort(), [
      ".kw0123456789.key",
      ".kwnothex00000.conf",
      "wg1.conf",
    ]);
  });
});
