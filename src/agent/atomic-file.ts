import { randomBytes } from "node:crypto";
import { open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";

/** Options of an atomic write: the file's mode and ownership, and an optional check of the candidate. */
export interface AtomicWriteOptions {
  /** Permission bits, set before any content is written. */
  mode: number;
  /** Owner to set with fchown, when given. */
  uid?: number | undefined;
  /** Group to set with fchown, when given. */
  gid?: number | undefined;
  /**
   * Inspects the complete, synced candidate file before it replaces the
   * target. Throwing rejects it: the target stays as it was and the
   * candidate is removed.
   */
  validate?: (candidatePath: string) => Promise<void>;
}

/**
 * Candidate files are `.kw` and 10 hex digits, then the target's extension.
 * The name stays within 15 characters before `.conf`, so `wg-quick strip`
 * accepts a candidate of a WireGuard configuration as a check.
 */
const CANDIDATE_NAME = /^\.kw[0-9a-f]{10}(\.[^./]*)?$/;

function candidatePathFor(target: string): string {
  return join(dirname(target), `.kw${randomBytes(5).toString("hex")}${extname(target)}`);
}

/** Flushes a directory, so that a rename inside it survives a power loss. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Removes candidate files that an interrupted write left next to `target`
 * (those with the target's extension). Only names the agent itself makes are
 * touched.
 */
export async function removeStaleCandidates(target: string): Promise<void> {
  const directory = dirname(target);
  const extension = extname(target);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return;
  }
  for (const name of names) {
    if (CANDIDATE_NAME.test(name) && extname(name) === extension && name !== basename(target)) {
      await unlink(join(directory, name)).catch(() => undefined);
    }
  }
}

/**
 * Replaces `target` so that a crash at any point leaves either the old or
 * the new content, never a mix. A candidate file is made next to the target
 * (same directory, so the rename stays on one file system) with `O_EXCL`,
 * which never follows a symlink. The mode and owner are set first, then the
 * content is written and synced. After `validate` accepts the candidate it
 * is renamed over the target and the directory is synced.
 */
export async function writeFileAtomic(
  target: string,
  content: string | Uint8Array,
  options: AtomicWriteOptions,
): Promise<void> {
  const candidate = candidatePathFor(target);
  const handle = await open(candidate, "wx", options.mode);
  let renamed = false;
  try {
    try {
      // open() applies the umask, so the mode is set again explicitly.
      await handle.chmod(options.mode);
      if (options.uid !== undefined || options.gid !== undefined) {
        await handle.chown(options.uid ?? -1, options.gid ?? -1);
      }
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.validate) await options.validate(candidate);
    await rename(candidate, target);
    renamed = true;
    await syncDirectory(dirname(target));
  } finally {
    if (!renamed) await unlink(candidate).catch(() => undefined);
  }
}
