import type { EngineType } from "../core/mounts.ts";

/**
 * Folders of each engine type whose records the engine keeps in memory, so
 * a change another node made there must rebuild the engine on this node.
 * Records outside them (issued certificates, index entries, audit records)
 * are read from storage each time, so their changes need nothing here.
 * An engine type missing from this table is rebuilt on any change.
 */
const CACHED_FOLDERS: Partial<Record<EngineType, readonly string[]>> = {
  transit: ["keys/", "config/"],
  pki: ["issuers/", "keys/", "roles/", "config/"],
};

/** True when a change to `relativeKey` inside a mount of `type` makes that mount's engine stale. */
export function engineCaches(type: EngineType, relativeKey: string): boolean {
  const folders = CACHED_FOLDERS[type];
  return folders === undefined || folders.some((folder) => relativeKey.startsWith(folder));
}
