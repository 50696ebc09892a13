import { existsSync } from "node:fs";
import { invalidField } from "../errors.ts";
import { resolveAccountId } from "./accounts.ts";
import {
  type CertificateArtifactConfig,
  certificateFiles,
  readCertificate,
} from "./certificate-config.ts";
import {
  type ConfigObject,
  optionalBoolean,
  optionalDuration,
  optionalPrivateMode,
  optionalString,
  rejectUnknownFields,
  requireMatching,
  requireObject,
  requireString,
  resolvePath,
} from "./config-values.ts";
import { readWifi, type WifiArtifactConfig } from "./wifi-config.ts";

/** WireGuard configuration formats the server renders: for wg-quick(8), or for `wg setconf`. */
export const WIREGUARD_FORMATS = ["wg-quick", "wg"] as const;
export type WireguardFormat = (typeof WIREGUARD_FORMATS)[number];

/** Installation settings of one artifact: target file, permissions and commands. */
export interface FileSettings {
  /** Absolute path of the installed file. */
  path: string;
  /** Permission bits, such as 0o600. */
  mode: number;
  /** Numeric owner when the config sets one, otherwise the agent's own user. */
  uid: number | undefined;
  /** Numeric group, when the config sets one. */
  gid: number | undefined;
  /** Shell command that validates a candidate file, with `{path}` replaced by its quoted path. */
  check: string | undefined;
  /** Shell command run after each install, such as a service reload. */
  reload: string | undefined;
  /** Time limit for `check` and `reload`, in milliseconds. */
  commandTimeoutMs: number;
}

/** A WireGuard configuration for one peer of a network. */
export interface WireguardArtifactConfig extends FileSettings {
  kind: "wireguard";
  /** The server's artifact id: `wireguard:<mount>:<network>:<peer>`. */
  id: string;
  mount: string;
  network: string;
  peer: string;
  format: WireguardFormat;
}

/** A shared secret written to a file. */
export interface SecretArtifactConfig extends FileSettings {
  kind: "secret";
  /** The server's artifact id: `secret:<name>`. */
  id: string;
  name: string;
  /** Whether a newline follows the value in the file. */
  trailingNewline: boolean;
}

export type { CertificateArtifactConfig, WifiArtifactConfig };

export type ArtifactConfig =
  | WifiArtifactConfig
  | WireguardArtifactConfig
  | SecretArtifactConfig
  | CertificateArtifactConfig;

/** Mount paths as the WireGuard engine accepts them: segments of [A-Za-z0-9_-] joined by "/". */
const MOUNT_PATH = /^(?=.{1,128}$)[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;
/** Network, peer and secret names: 1 to 64 of [A-Za-z0-9_.-], starting with a letter or digit. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const COMMON_FIELDS = [
  "kind",
  "path",
  "owner",
  "group",
  "mode",
  "check",
  "reload",
  "command_timeout",
];
const WIREGUARD_FIELDS = [...COMMON_FIELDS, "mount", "network", "peer", "format"];
const SECRET_FIELDS = [...COMMON_FIELDS, "name", "trailing_newline"];

export function readFileSettings(
  entry: ConfigObject,
  prefix: string,
  baseDir: string,
): FileSettings {
  const text = requireString(entry, "path", `${prefix}path`);
  if (text.endsWith("/") || text.endsWith("/.") || text.endsWith("/..")) {
    throw invalidField(`${prefix}path`, `"${prefix}path" must name a file, not a directory`);
  }
  const path = resolvePath(text, baseDir, `${prefix}path`);
  const owner = entry.owner;
  const group = entry.group;
  const check = optionalString(entry, "check", `${prefix}check`);
  if (check !== undefined && !check.includes("{path}")) {
    throw invalidField(
      `${prefix}check`,
      `"${prefix}check" must contain {path}, which the agent replaces with the candidate file it checks`,
    );
  }
  return {
    path,
    // Every kind that uses these settings writes a secret or a WireGuard private key.
    mode: optionalPrivateMode(entry, "mode", `${prefix}mode`, 0o600),
    uid:
      owner === undefined || owner === null
        ? undefined
        : resolveAccountId(owner, "passwd", `${prefix}owner`),
    gid:
      group === undefined || group === null
        ? undefined
        : resolveAccountId(group, "group", `${prefix}group`),
    check,
    reload: optionalString(entry, "reload", `${prefix}reload`),
    commandTimeoutMs:
      1000 *
      optionalDuration(entry, "command_timeout", `${prefix}command_timeout`, {
        minSeconds: 1,
        maxSeconds: 3600,
        defaultSeconds: 30,
      }),
  };
}

function readWireguard(
  entry: ConfigObject,
  prefix: string,
  baseDir: string,
): WireguardArtifactConfig {
  rejectUnknownFields(entry, WIREGUARD_FIELDS, prefix);
  const mount = requireMatching(
    entry,
    "mount",
    `${prefix}mount`,
    MOUNT_PATH,
    'a mount path such as "wireguard" (letters, digits, "_" and "-", segments joined by "/")',
  );
  const network = requireMatching(
    entry,
    "network",
    `${prefix}network`,
    NAME,
    '1 to 64 of letters, digits, "_", "." and "-", starting with a letter or digit',
  );
  const peer = requireMatching(
    entry,
    "peer",
    `${prefix}peer`,
    NAME,
    '1 to 64 of letters, digits, "_", "." and "-", starting with a letter or digit',
  );
  const format = entry.format ?? "wg-quick";
  if (!WIREGUARD_FORMATS.includes(format as WireguardFormat)) {
    throw invalidField(`${prefix}format`, `"${prefix}format" must be "wg-quick" or "wg"`);
  }
  return {
    kind: "wireguard",
    id: `wireguard:${mount}:${network}:${peer}`,
    mount,
    network,
    peer,
    format: format as WireguardFormat,
    ...readFileSettings(entry, prefix, baseDir),
  };
}

function readSecret(entry: ConfigObject, prefix: string, baseDir: string): SecretArtifactConfig {
  rejectUnknownFields(entry, SECRET_FIELDS, prefix);
  const name = requireMatching(
    entry,
    "name",
    `${prefix}name`,
    NAME,
    '1 to 64 of letters, digits, "_", "." and "-", starting with a letter or digit',
  );
  return {
    kind: "secret",
    id: `secret:${name}`,
    name,
    trailingNewline:
      optionalBoolean(entry, "trailing_newline", `${prefix}trailing_newline`) ?? false,
    ...readFileSettings(entry, prefix, baseDir),
  };
}

/** Parses the `artifacts` list. Two entries may share an artifact id but never a path. */
export function readArtifacts(value: unknown, baseDir: string): ArtifactConfig[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidField("artifacts", '"artifacts" must be a JSON array');
  const artifacts: ArtifactConfig[] = [];
  /** The config field that names each file, such as `artifacts[0].path`. */
  const paths = new Map<string, string>();
  for (const [index, item] of value.entries()) {
    const prefix = `artifacts[${index}].`;
    const entry = requireObject(item, `artifacts[${index}]`);
    const kind = requireString(entry, "kind", `${prefix}kind`);
    let artifact: ArtifactConfig;
    if (kind === "wireguard") artifact = readWireguard(entry, prefix, baseDir);
    else if (kind === "secret") artifact = readSecret(entry, prefix, baseDir);
    else if (kind === "certificate") artifact = readCertificate(entry, prefix, baseDir);
    else if (kind === "wifi") {
      artifact = readWifi(entry, prefix, COMMON_FIELDS, () =>
        readFileSettings(entry, prefix, baseDir),
      );
    } else {
      throw invalidField(
        `${prefix}kind`,
        `"${prefix}kind" must be "wireguard", "secret", "certificate" or "wifi"`,
      );
    }
    const files: [string, string][] =
      artifact.kind === "certificate" ? certificateFiles(artifact) : [["path", artifact.path]];
    for (const [key, path] of files) {
      const earlier = paths.get(path);
      if (earlier !== undefined) {
        throw invalidField(
          `${prefix}${key}`,
          `"${prefix}${key}" is the same file as "${earlier}"; each artifact needs its own file`,
        );
      }
      paths.set(path, `${prefix}${key}`);
    }
    // Two entries with one certificate would each send CSRs for their own key.
    if (artifact.kind === "certificate" && artifacts.some((other) => other.id === artifact.id)) {
      throw invalidField(
        `${prefix}name`,
        `certificate "${artifact.name}" is configured twice; each certificate needs one entry`,
      );
    }
    artifacts.push(artifact);
  }
  return artifacts;
}

/** Returns the shell that runs check and reload commands unless the config names one. */
export function defaultShell(): string {
  // bash is preferred because reload commands often use process substitution, such as
  // `wg syncconf wg0 <(wg-quick strip wg0)`, which POSIX sh lacks.
  return existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
}
