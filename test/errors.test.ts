import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ERROR_CODES, KeywardError } from "../src/errors.ts";

describe("error codes", () => {
  const documentation = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");

  it("documents every code with its status", () => {
    for (const [code, status] of Object.entries(ERROR_CODES)) {
      const row = new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`, "m");
      assert.match(documentation, row, `docs/errors.md has no row for ${code} (${status})`);
    }
  });

  it("documents no code that does not exist", () => {
    const documented = [...documentation.matchAll(/^\|\s*`([a-z0-9_]+)`\s*\|/gm)].map(
      (match) => match[1],
    );
    for (const code of documented)
      assert.ok(code && code in ERROR_CODES, `docs/errors.md lists unknown code ${code}`);
  });

  it("maps codes to their status", () => {
    assert.equal(new KeywardError("not_found", "x").status, 404);
    assert.equal(new KeywardError("sealed", "x").status, 503);
    assert.equal(new KeywardError("invalid_field", "x", { field: "name" }).field, "name");
  });
});
