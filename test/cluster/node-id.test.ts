import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { NODE_ID_FILE, resolveNodeId } from "../../src/cluster/node-id.ts";
import { KeywardError } from "../../src/errors.ts";

describe("node id", () => {
  const root = mkdtempSync(join(tmpdir(), "keyward-node-id-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("keeps a generated id", () => {
    const dataDir = join(root, "generated");
    const first = resolveNodeId(undefined, dataDir);
    assert.match(first, /^[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{6}$/);
    assert.equal(resolveNodeId(undefined, dataDir), first);
    const path = join(dataDir, NODE_ID_FILE);
    assert.equal(readFileSync(path, "utf8"), `${first}\n`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it("prefers the configured id", () => {
    const dataDir = join(root, "configured");
    assert.equal(resolveNodeId("node-7", dataDir), "node-7");
  });

  it("rejects a corrupted file", () => {
    const dataDir = join(root, "corrupted");
    resolveNodeId(undefined, dataDir);
    writeFileSync(join(dataDir, NODE_ID_FILE), "not a valid id!\n");
    assert.throws(
      () => resolveNodeId(undefined, dataDir),
      (error) => error instanceof KeywardError && error.code === "invalid_field",
    );
  });
});
