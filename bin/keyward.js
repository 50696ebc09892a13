#!/usr/bin/env node
// Entry point of the `keyward` command. It runs the compiled CLI from dist/,
// which `npm install` builds (the package's `prepare` script).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  console.error(
    "keyward: dist/ is missing; run `npm install` (or `npm run build`) in the checkout first",
  );
  process.exit(1);
}
await import(entry.href);
