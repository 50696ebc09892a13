#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner, loading
// TypeScript through tsx. Node 20's runner takes no glob patterns, so the
// files are collected here. Extra arguments are passed to `node --test`
// (for example `--test-name-pattern`), and a path argument limits the run to
// the files under it.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;

function collect(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...collect(path));
    else if (name.endsWith(".test.ts")) files.push(path);
  }
  return files;
}

const args = process.argv.slice(2);
const paths = args.filter((arg) => !arg.startsWith("-"));
const flags = args.filter((arg) => arg.startsWith("-"));
const roots = paths.length > 0 ? paths.map((p) => join(process.cwd(), p)) : [join(root, "test")];
const files = roots.flatMap((p) => (statSync(p).isDirectory() ? collect(p) : [p]));

// Two files at a time: many tests wait on child processes and fsync rather
// than the CPU, so two runners roughly halve the suite's time on two cores.
// A --test-concurrency argument overrides this.
const concurrency = flags.some((flag) => flag.startsWith("--test-concurrency"))
  ? []
  : ["--test-concurrency=2"];

console.log(`running ${files.length} test files`);
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    "--test-reporter=spec",
    "--test-timeout=300000",
    ...concurrency,
    ...flags,
    ...files.map((f) => relative(process.cwd(), f)),
  ],
  {
    stdio: "inherit",
    cwd: process.cwd(),
    // Storage rejects calls nested inside its own transactions; servers the
    // tests start inherit the setting.
    env: { ...process.env, KEYWARD_STORAGE_CHECKS: "1" },
  },
);
process.exit(result.status ?? 1);
