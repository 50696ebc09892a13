import type { KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { openSealed } from "../devices/sealed.ts";
import { removeStaleCandidates, writeFileAtomic } from "./atomic-file.ts";
import { installCertificate } from "./certificate-artifacts.ts";
import { describeFailure, runShellCommand, substitutePath } from "./commands.ts";
import type { ArtifactConfig, FileSettings } from "./config.ts";
import { type Artifact, type ArtifactContent, contentAt } from "./protocol.ts";
import { type AgentState, contentSha256 } from "./state.ts";
import { validateWifiFile } from "./wifi-validation.ts";
import { insertPrivateKey } from "./wireguard-config.ts";
import { type Keyring, privateKeyFor } from "./wireguard-keys.ts";

/** Keys, state, shell and state writer that installing uses. */
export interface InstallContext {
  state: AgentState;
  keyring: Keyring;
  encryptionKey: KeyObject;
  shell: string;
  now: () => number;
  saveState: () => Promise<void>;
  /** The agent's state directory, where certificate keys are kept. Required for `certificate` entries. */
  stateDir?: string;
}

/** The result of one install attempt. */
export type InstallOutcome =
  /** The file already contained `version`, and its reload had run. */
  | { status: "unchanged"; version: number }
  /** The file now contains `version`, and its reload has run. */
  | { status: "installed"; version: number }
  /** The file now contains `version`, but its reload command failed, so the reload runs again next round. */
  | { status: "reload_failed"; version: number; reason: string }
  /** The file cannot be made yet, such as before the server shows this agent's key as active. */
  | { status: "waiting"; reason: string }
  /** The install failed, and the previous file is still in place. */
  | { status: "failed"; reason: string };

/** A failure of one step of an install. Its message contains no secret material. */
class InstallError extends Error {
  override readonly name = "InstallError";
}

class WaitingError extends Error {
  override readonly name = "WaitingError";
}

async function openField(
  context: InstallContext,
  entry: ArtifactConfig,
  content: ArtifactContent,
  field: string,
): Promise<string> {
  const sealed = content.secrets[field];
  if (sealed === undefined) {
    throw new InstallError(`the server sent no "${field}" secret for version ${content.version}`);
  }
  try {
    return await openSealed(context.encryptionKey, sealed, {
      artifact: entry.id,
      version: content.version,
      field,
    });
  } catch (error) {
    throw new InstallError(`cannot open the "${field}" secret: ${(error as Error).message}`);
  }
}

/** Builds the file content for `entry` from the chosen artifact content. */
async function renderFile(
  context: InstallContext,
  entry: Exclude<ArtifactConfig, { kind: "certificate" }>,
  content: ArtifactContent,
): Promise<string> {
  if (entry.kind === "secret") {
    const value = await openField(context, entry, content, "value");
    return entry.trailingNewline ? `${value}\n` : value;
  }
  if (entry.kind === "wifi") {
    const text = await openField(context, entry, content, entry.file);
    try {
      validateWifiFile(entry.file, text);
    } catch (error) {
      throw new InstallError(`invalid Wi-Fi ${entry.file} file: ${(error as Error).message}`);
    }
    return text;
  }
  const publicKey = content.fields.public_key;
  const privateKey = privateKeyFor(context.keyring.peers[entry.id] ?? {}, publicKey);
  if (privateKey === undefined) {
    throw new WaitingError(
      publicKey === null || publicKey === undefined
        ? "the server has no public key for this peer yet"
        : "the server's public key for this peer is not one this agent holds; waiting for this agent's key to become active",
    );
  }
  const rendered = await openField(context, entry, content, entry.format);
  try {
    return insertPrivateKey(rendered, privateKey);
  } catch (error) {
    throw new InstallError(`invalid WireGuard configuration: ${(error as Error).message}`);
  }
}

async function runCheck(shell: string, settings: FileSettings, candidate: string): Promise<void> {
  const check = settings.check as string;
  const result = await runShellCommand(
    shell,
    substitutePath(check, candidate),
    settings.commandTimeoutMs,
  );
  if (!result.ok) {
    throw new InstallError(
      `the check command ${describeFailure(result, settings.commandTimeoutMs)}; the previous file is kept`,
    );
  }
}

/** Runs the reload command if one is configured and records its success. */
async function reload(
  context: InstallContext,
  entry: ArtifactConfig,
  version: number,
): Promise<InstallOutcome> {
  const record = context.state.installed[entry.path];
  if (entry.reload !== undefined) {
    const result = await runShellCommand(context.shell, entry.reload, entry.commandTimeoutMs);
    if (!result.ok) {
      return {
        status: "reload_failed",
        version,
        reason: `the reload command ${describeFailure(result, entry.commandTimeoutMs)}`,
      };
    }
  }
  if (record?.reload_pending) {
    record.reload_pending = false;
    await context.saveState();
  }
  return { status: "installed", version };
}

/**
 * Installs the content `artifact` calls for at this moment (its `next`
 * content once the activation time has passed) into the configured file.
 * The content is rendered every round. Nothing is written when the file
 * already contains that version with the same SHA-256 and its reload has
 * run. A reload that failed earlier is run again.
 */
export async function installArtifact(
  context: InstallContext,
  entry: ArtifactConfig,
  artifact: Artifact,
): Promise<InstallOutcome> {
  // A certificate is a key and certificate pair made from the agent's own key.
  if (entry.kind === "certificate") {
    const { stateDir } = context;
    if (stateDir === undefined) return { status: "failed", reason: "no state directory is set" };
    return installCertificate({ ...context, stateDir }, entry, artifact);
  }
  const content = contentAt(artifact, context.now());
  let text: string;
  try {
    text = await renderFile(context, entry, content);
  } catch (error) {
    if (error instanceof WaitingError) return { status: "waiting", reason: error.message };
    if (error instanceof InstallError) return { status: "failed", reason: error.message };
    throw error;
  }

  // The hash catches a credential deleted and created again whose version repeats.
  const sha256 = contentSha256(text);
  const record = context.state.installed[entry.path];
  if (
    record?.id === entry.id &&
    record.version === content.version &&
    record.sha256 === sha256 &&
    existsSync(entry.path)
  ) {
    if (!record.reload_pending) return { status: "unchanged", version: content.version };
    return reload(context, entry, content.version);
  }

  try {
    await removeStaleCandidates(entry.path);
    await writeFileAtomic(entry.path, text, {
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      ...(entry.check === undefined
        ? {}
        : { validate: (candidate: string) => runCheck(context.shell, entry, candidate) }),
    });
  } catch (error) {
    if (error instanceof InstallError) return { status: "failed", reason: error.message };
    return { status: "failed", reason: `cannot write ${entry.path}: ${(error as Error).message}` };
  }

  context.state.installed[entry.path] = {
    id: entry.id,
    version: content.version,
    sha256,
    installed_at: new Date(context.now()).toISOString(),
    reload_pending: entry.reload !== undefined,
  };
  // New content is reported even when its version was reported before.
  delete context.state.reported[entry.id];
  await context.saveState();
  return reload(context, entry, content.version);
}
