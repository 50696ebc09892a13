import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { LOG_LEVELS, type LogLevel } from "../config.ts";
import { invalidField, KeywardError } from "../errors.ts";
import { type ArtifactConfig, defaultShell, readArtifacts } from "./config-artifacts.ts";
import {
  optionalDuration,
  optionalString,
  rejectUnknownFields,
  requireMatching,
  requireObject,
  requireString,
  resolvePath,
} from "./config-values.ts";

export type {
  ArtifactConfig,
  FileSettings,
  SecretArtifactConfig,
  WireguardArtifactConfig,
  WireguardFormat,
} from "./config-artifacts.ts";

/** The agent's settings, read from its JSON config file. */
export interface AgentConfig {
  /** Base URL of the Keyward server, always https because the device API needs mutual TLS. */
  server: URL;
  /** PEM bundle that the server's certificate must chain to, or the system's CAs when absent. */
  caFile: string | undefined;
  /** The device's name in the registry and the common name of its identity certificate. */
  device: string;
  /** The bootstrap token, given inline. At most one of this and `bootstrapTokenFile` is set. */
  bootstrapToken: string | undefined;
  /** A file whose content (surrounding whitespace removed) is the bootstrap token. */
  bootstrapTokenFile: string | undefined;
  /** Directory of the agent's keys, certificates and state.json. */
  stateDir: string;
  /** Max time one state request waits for a change on the server, in seconds (1 to 60). */
  pollWaitSeconds: number;
  /** The shell that runs check and reload commands. */
  shell: string;
  logLevel: LogLevel;
  artifacts: ArtifactConfig[];
}

const TOP_LEVEL_FIELDS = [
  "server",
  "ca_file",
  "device",
  "bootstrap_token",
  "bootstrap_token_file",
  "state_dir",
  "poll_wait",
  "shell",
  "log_level",
  "artifacts",
];

/** Device names: 1 to 63 of [A-Za-z0-9_.-], starting with a letter or digit. */
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Bootstrap tokens: `kwb.` and 43 base64url characters (256 bits). */
export const BOOTSTRAP_TOKEN = /^kwb\.[A-Za-z0-9_-]{43}$/;

function readServer(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidField("server", '"server" must be a URL such as "https://keyward.example:8200"');
  }
  if (url.protocol !== "https:") {
    throw invalidField(
      "server",
      '"server" must be an https URL: the device API authenticates devices with mutual TLS',
    );
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw invalidField("server", '"server" must not contain credentials, a query or a fragment');
  }
  return url;
}

function readBootstrapToken(object: Record<string, unknown>, baseDir: string) {
  const token = optionalString(object, "bootstrap_token", "bootstrap_token");
  const tokenFile = optionalString(object, "bootstrap_token_file", "bootstrap_token_file");
  if (token !== undefined && tokenFile !== undefined) {
    throw invalidField(
      "bootstrap_token_file",
      'set either "bootstrap_token" or "bootstrap_token_file", not both',
    );
  }
  // The message never repeats the token.
  if (token !== undefined && !BOOTSTRAP_TOKEN.test(token)) {
    throw invalidField(
      "bootstrap_token",
      '"bootstrap_token" must be "kwb." followed by 43 base64url characters, as the server issues it',
    );
  }
  return {
    bootstrapToken: token,
    bootstrapTokenFile:
      tokenFile === undefined ? undefined : resolvePath(tokenFile, baseDir, "bootstrap_token_file"),
  };
}

/**
 * Validates a parsed config file. Relative paths are resolved against
 * `baseDir`, the directory of the config file. Throws a `KeywardError`
 * (`missing_field`, `invalid_field` or `unknown_field`) whose message names
 * the field, such as `artifacts[1].mode`.
 */
export function parseAgentConfig(value: unknown, baseDir: string): AgentConfig {
  const object = requireObject(value, "config");
  rejectUnknownFields(object, TOP_LEVEL_FIELDS, "");
  const server = readServer(requireString(object, "server", "server"));
  const caFile = optionalString(object, "ca_file", "ca_file");
  const device = requireMatching(
    object,
    "device",
    "device",
    DEVICE_NAME,
    '1 to 63 of letters, digits, "_", "." and "-", starting with a letter or digit',
  );
  const stateDir = resolvePath(
    requireString(object, "state_dir", "state_dir"),
    baseDir,
    "state_dir",
  );
  const logLevel = object.log_level ?? "info";
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw invalidField("log_level", `"log_level" must be one of ${LOG_LEVELS.join(", ")}`);
  }
  const shell = optionalString(object, "shell", "shell");
  return {
    server,
    caFile: caFile === undefined ? undefined : resolvePath(caFile, baseDir, "ca_file"),
    device,
    ...readBootstrapToken(object, baseDir),
    stateDir,
    pollWaitSeconds: optionalDuration(object, "poll_wait", "poll_wait", {
      minSeconds: 1,
      maxSeconds: 60,
      defaultSeconds: 30,
    }),
    shell: shell === undefined ? defaultShell() : resolvePath(shell, baseDir, "shell"),
    logLevel: logLevel as LogLevel,
    artifacts: readArtifacts(object.artifacts, baseDir),
  };
}

/** Reads and validates the agent's JSON config file. */
export function readAgentConfig(file: string): AgentConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? "read error";
    throw new KeywardError("invalid_request", `cannot read config file ${path} (${reason})`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8's message can quote the text around the error, which may be the bootstrap token,
    // so only the position is kept.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const where = position === undefined ? "" : ` (error at character ${position})`;
    throw new KeywardError("invalid_json", `config file ${path} is not valid JSON${where}`);
  }
  const config = parseAgentConfig(parsed, dirname(path));
  checkConfigPaths(config);
  return config;
}

/** Returns the file's kind, or undefined when nothing exists at `path`. */
function kindOf(path: string): "directory" | "file" | undefined {
  try {
    return statSync(path).isDirectory() ? "directory" : "file";
  } catch {
    return undefined;
  }
}

/**
 * Checks at start the paths the config names on this machine, so that a
 * wrong path stops the agent with the field named instead of failing later.
 * The CA file must contain a PEM certificate, the state directory must not
 * be a file, the shell must be executable, and each artifact's folder must
 * exist.
 */
export function checkConfigPaths(config: AgentConfig): void {
  if (config.caFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(config.caFile, "utf8");
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? "read error";
      throw invalidField(
        "ca_file",
        `cannot read "ca_file" ${config.caFile} (${reason}); check the path and its permissions`,
      );
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw invalidField(
        "ca_file",
        `"ca_file" ${config.caFile} contains no PEM certificate; set it to a PEM bundle of the server's CA`,
      );
    }
  }
  if (kindOf(config.stateDir) === "file") {
    throw invalidField("state_dir", `"state_dir" ${config.stateDir} is a file, not a directory`);
  }
  try {
    accessSync(config.shell, constants.X_OK);
  } catch {
    throw invalidField("shell", `"shell" ${config.shell} is missing or not executable`);
  }
  config.artifacts.forEach((artifact, index) => {
    const field = `artifacts[${index}].path`;
    if (kindOf(artifact.path) === "directory") {
      throw invalidField(field, `"${field}" ${artifact.path} is a directory, not a file`);
    }
    if (kindOf(dirname(artifact.path)) !== "directory") {
      throw invalidField(field, `the folder of "${field}" ${artifact.path} does not exist`);
    }
  });
}
