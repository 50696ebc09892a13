import { readFileSync } from "node:fs";

/** Keyward's version, read from package.json so there is one source. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
