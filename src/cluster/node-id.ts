import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { KeywardError } from "../errors.ts";
import { NODE_ID_PATTERN } from "../storage/coordination.ts";

/** The file in the data directory that keeps a generated node id across restarts. */
export const NODE_ID_FILE = "node-id";

/** Throws `invalid_field` on `field` unless `nodeId` is a valid node id. */
export function validateNodeId(nodeId: string, field = "node_id"): string {
  if (!NODE_ID_PATTERN.test(nodeId)) {
    throw new KeywardError(
      "invalid_field",
      `invalid node id ${JSON.stringify(nodeId)}: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      { field },
    );
  }
  return nodeId;
}

/**
 * Returns this node's id: the configured one, or the one kept in the data
 * directory, or a new one (the host name and 6 random hex digits) written
 * there with mode 0600 so the node keeps it across restarts.
 */
export function resolveNodeId(configured: string | undefined, dataDir: string): string {
  if (configured !== undefined) return validateNodeId(configured);
  const path = join(dataDir, NODE_ID_FILE);
  try {
    return validateNodeId(readFileSync(path, "utf8").trim(), path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 40);
  const nodeId = `${host === "" ? "node" : host}-${randomBytes(3).toString("hex")}`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(path, `${nodeId}\n`, { mode: 0o600, flag: "wx" });
  return nodeId;
}
