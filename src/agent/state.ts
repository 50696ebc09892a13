import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-file.ts";
import { type DeviceState, parseDeviceState } from "./protocol.ts";

/** Enrolment record: the server's response when it issued the current certificate. */
export interface Enrollment {
  device: string;
  device_id: string;
  serial_number: string;
  /** Unix seconds. */
  expiration: number;
  /** Unix seconds. */
  renew_after: number;
  /** SHA-256 (hex) of the bootstrap token used, so the same token is not sent again. */
  bootstrap_token_sha256: string | null;
}

/** One installed file, by path. */
export interface InstalledFile {
  /** The artifact id it came from. */
  id: string;
  /** The artifact version it contains. */
  version: number;
  /**
   * SHA-256 (hex) of the content written, compared on every round because
   * a credential deleted and created again can repeat a version. Missing in
   * state files of older agents, which makes the next round reinstall.
   */
  sha256?: string;
  installed_at: string;
  /** True from the rename until the reload command has succeeded. */
  reload_pending: boolean;
}

/** Everything the agent remembers between runs, stored as state.json in the state directory. */
export interface AgentState {
  format: 1;
  enrollment: Enrollment | null;
  /** The last state the server sent (secrets still encrypted), used while the server is unreachable. */
  last_state: DeviceState | null;
  /** Installed files, keyed by path. */
  installed: Record<string, InstalledFile>;
  /** The last version reported as applied, per artifact id. */
  reported: Record<string, number>;
}

export const STATE_FILE = "state.json";

/** Returns an empty state, as on first start. */
export function emptyState(): AgentState {
  return { format: 1, enrollment: null, last_state: null, installed: {}, reported: {} };
}

/**
 * Reads state.json from `stateDir`, or returns an empty state when it does
 * not exist. A file that does not parse is an error: starting from scratch
 * would silently re-enrol and reinstall everything.
 */
export async function loadState(stateDir: string): Promise<AgentState> {
  const path = join(stateDir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
    throw error;
  }
  let parsed: Partial<AgentState>;
  try {
    parsed = JSON.parse(text) as Partial<AgentState>;
  } catch {
    throw new Error(`${path} is not valid JSON; move it away to start over`);
  }
  if (parsed.format !== 1) {
    throw new Error(`${path} has an unknown format; move it away to start over`);
  }
  return {
    format: 1,
    enrollment: parsed.enrollment ?? null,
    last_state: parsed.last_state ? parseDeviceState(parsed.last_state) : null,
    installed: parsed.installed ?? {},
    reported: parsed.reported ?? {},
  };
}

/**
 * Returns the SHA-256 (hex) of the contents of one install's files, each
 * prefixed with its length so that different splits never hash alike.
 * The hash of a weak secret (a short Wi-Fi passphrase) could be guessed
 * offline, but state.json is mode 0600 in the state directory, next to the
 * encryption key that opens every secret of the saved state anyway.
 */
export function contentSha256(...contents: string[]): string {
  const hash = createHash("sha256");
  for (const content of contents) {
    const bytes = Buffer.from(content, "utf8");
    hash.update(`${bytes.length}:`);
    hash.update(bytes);
  }
  return hash.digest("hex");
}

/**
 * Forgets the installed version, hash and reported version of every
 * artifact that `received` no longer offers, so an artifact created later
 * with the same id is installed and reported even if its version repeats.
 * The files stay in place. Returns the ids forgotten.
 */
export function forgetWithdrawnArtifacts(state: AgentState, received: DeviceState): string[] {
  const offered = new Set(received.artifacts.map((artifact) => artifact.id));
  const forgotten = new Set<string>();
  for (const [path, record] of Object.entries(state.installed)) {
    if (offered.has(record.id)) continue;
    delete state.installed[path];
    forgotten.add(record.id);
  }
  for (const id of Object.keys(state.reported)) {
    if (offered.has(id)) continue;
    delete state.reported[id];
    forgotten.add(id);
  }
  return [...forgotten];
}

/** Writes state.json atomically (mode 0600), so a crash leaves the previous or the new state. */
export async function saveState(stateDir: string, state: AgentState): Promise<void> {
  await writeFileAtomic(join(stateDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, {
    mode: 0o600,
  });
}
