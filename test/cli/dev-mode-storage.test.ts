import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { startDevServer } from "../helpers/server-process.ts";

// The dev unseal key in a data directory belongs to the store that was
// initialised with it. A dev server pointed at new, empty storage must not
// overwrite it, or the first store could never be unsealed again.
describe("dev mode with other storage", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-dev-storage-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("keeps the unseal key of the first store", async () => {
    const first = await startDevServer({ dataDir });
    await first.stop();
    const keyPath = join(dataDir, "dev-unseal-key");
    const key = readFileSync(keyPath, "utf8");

    const other = join(dataDir, "other.db");
    await assert.rejects(
      startDevServer({ dataDir, args: ["--storage", `sqlite:${other}`] }),
      /contains the unseal key of an installation initialised in dev mode earlier/,
    );
    assert.equal(readFileSync(keyPath, "utf8"), key);

    const again = await startDevServer({ dataDir });
    assert.equal(again.rootToken.length > 0, true);
    await again.stop();
    assert.ok(existsSync(keyPath));
  });
});
