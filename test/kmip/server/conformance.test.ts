import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { CASE_VERSIONS, caseFiles } from "../vectors.ts";
import { replayCase } from "./replay-cases.ts";

const DOC = new URL("../../../docs/kmip.md", import.meta.url);
const HEADING = "## Conformance cases that do not pass yet";

/** Reads the cases docs/kmip.md lists as not passing, as "v1.4/NAME". */
function documentedFailures(): Set<string> {
  const text = readFileSync(DOC, "utf8");
  const start = text.indexOf(HEADING);
  assert.ok(start >= 0, `docs/kmip.md has no "${HEADING}" section`);
  const rest = text.slice(start + HEADING.length);
  const end = rest.search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end);
  const names = new Set<string>();
  for (const match of section.matchAll(/^- `(v\d\.\d\/[\w-]+)`/gm)) names.add(match[1]!);
  return names;
}

describe("KMIP conformance cases", () => {
  const documented = documentedFailures();

  for (const version of CASE_VERSIONS) {
    it(`replays every ${version} case`, async (t) => {
      const files = caseFiles().filter((file) => file.version === version);
      const failing: string[] = [];
      const details: string[] = [];
      for (const file of files) {
        const result = await replayCase(file);
        if (result.failure !== undefined) {
          failing.push(`${version}/${result.name}`);
          details.push(`${version}/${result.name}: ${result.failure}`);
        }
      }
      t.diagnostic(`${version}: ${files.length - failing.length} of ${files.length} cases pass`);
      for (const line of details) t.diagnostic(line);
      const expected = [...documented].filter((name) => name.startsWith(`${version}/`)).sort();
      assert.deepEqual(
        failing.sort(),
        expected,
        "the failing cases differ from the list in docs/kmip.md",
      );
    });
  }
});
