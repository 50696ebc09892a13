import { existsSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { normaliseMountPath } from "./core/mounts.ts";
import { KeywardError } from "./errors.ts";
import { MAX_TOKEN_LABEL_BYTES } from "./hsm/labels.ts";
import { DEFAULT_WRAPPING_KEY_LABEL } from "./seal/wrapped-root-key.ts";
import { NODE_ID_PATTERN } from "./storage/coordination.ts";
import { parseStorageLocation } from "./storage/index.ts";

/** Vault's default maximum request size: 32 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;
export const DEFAULT_LISTEN = "127.0.0.1:8200";
export const DEFAULT_DATA_DIR = "./keyward-data";
/** Days a scheduled key deletion waits before it runs when neither the request nor the mount sets a window. */
export const DEFAULT_DELETION_WINDOW_DAYS = 30;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The server's settings after the config file, environment and flags are merged. */
export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /**
   * Where the server stores its data: a `postgres://` URL, `sqlite:PATH`, or
   * a data directory. Defaults to `dataDir`, which contains a SQLite file.
   */
  readonly storage: string;
  /** A PEM file of CA certificates for TLS to PostgreSQL storage. */
  readonly storageCaFile: string | undefined;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly logLevel: LogLevel;
  readonly maxRequestBytes: number;
  readonly dev: boolean;
  readonly devRootToken: string | undefined;
  /** Scheduler tick for rotation and deletion jobs, in milliseconds. */
  readonly jobIntervalMs: number;
  /** The KMIP server's address and TLS settings, when KMIP is enabled. */
  readonly kmip: KmipConfig | undefined;
  /** This node's id among nodes sharing one database; generated and kept in the data directory when unset. */
  readonly nodeId: string | undefined;
  /** The URL other nodes and load balancers reach this node's API at; derived from the listen address when unset. */
  readonly apiAddress: string | undefined;
  /** The HSM that wraps the root key (auto-unseal), when the seal is PKCS#11 instead of Shamir. */
  readonly sealPkcs11: SealPkcs11Config | undefined;
  /** The HSM that engines keep keys in (transit keys created with `hsm: true`), when one is configured. */
  readonly hsmPkcs11: Pkcs11TokenConfig | undefined;
}

/** A PKCS#11 token: its library, its label and where its user PIN comes from. */
export interface Pkcs11TokenConfig {
  /** Absolute path of the vendor's PKCS#11 library. */
  readonly library: string;
  readonly tokenLabel: string;
  /**
   * Returns the token's user PIN, read from the PIN file at each call or
   * taken from the PIN variable (KEYWARD_SEAL_PKCS11_PIN or
   * KEYWARD_HSM_PKCS11_PIN). A function, so that logging or serialising
   * the configuration never shows the PIN.
   */
  readonly readPin: () => string;
}

/** The PKCS#11 seal's library, token, key and PIN source. */
export interface SealPkcs11Config extends Pkcs11TokenConfig {
  /** Label of the AES-256 key that wraps the root key; created at initialisation when absent. */
  readonly keyLabel: string;
}

/**
 * The KMIP server's address and where its mutual-TLS certificates come
 * from. The three files are all set or all undefined, and when they are
 * undefined Keyward issues the server certificate from its own KMIP CA.
 */
export interface KmipConfig {
  readonly host: string;
  readonly port: number;
  /** The server certificate chain (absolute path). */
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  /** CA bundle that client certificates must chain to. */
  readonly clientCaFile: string | undefined;
  /**
   * Extra DNS names and IP addresses for the server certificate that Keyward
   * issues itself, besides the listen host, `localhost`, 127.0.0.1 and ::1.
   */
  readonly serverHostnames: readonly string[];
  /**
   * The transit mount that keeps the keys of KMIP objects as managed keys
   * (`DEFAULT_KMIP_KEYS_MOUNT` unless set); mounted at the first unseal
   * when missing.
   */
  readonly keysMount: string;
}

/** The transit mount KMIP objects' keys go to unless `kmip_keys_mount` names another. */
export const DEFAULT_KMIP_KEYS_MOUNT = "kmip-keys";

/** KMIP's registered port, used when `kmip_listen` names only a host. */
export const DEFAULT_KMIP_PORT = 5696;

/** Settings as they come from a file, the environment or flags: all optional, all strings or numbers. */
export interface ConfigSource {
  listen?: string;
  data_dir?: string;
  storage?: string;
  storage_ca?: string;
  tls_cert_file?: string;
  tls_key_file?: string;
  log_level?: string;
  max_request_size?: number | string;
  dev?: boolean;
  dev_root_token?: string;
  job_interval_ms?: number | string;
  kmip_listen?: string;
  kmip_tls_cert_file?: string;
  kmip_tls_key_file?: string;
  kmip_client_ca_file?: string;
  /** Comma-separated DNS names and IP addresses, or a list in a config file. */
  kmip_server_hostnames?: string | string[];
  kmip_keys_mount?: string;
  node_id?: string;
  api_addr?: string;
  seal_pkcs11_library?: string;
  seal_pkcs11_token_label?: string;
  seal_pkcs11_key_label?: string;
  seal_pkcs11_pin_file?: string;
  /** The PIN itself: accepted only from the environment, never from a file or a flag. */
  seal_pkcs11_pin?: string;
  hsm_pkcs11_library?: string;
  hsm_pkcs11_token_label?: string;
  hsm_pkcs11_pin_file?: string;
  /** The PIN itself: accepted only from the environment, never from a file or a flag. */
  hsm_pkcs11_pin?: string;
}

const FILE_FIELDS = new Set<keyof ConfigSource>([
  "listen",
  "data_dir",
  "storage",
  "storage_ca",
  "tls_cert_file",
  "tls_key_file",
  "log_level",
  "max_request_size",
  "job_interval_ms",
  "kmip_listen",
  "kmip_tls_cert_file",
  "kmip_tls_key_file",
  "kmip_client_ca_file",
  "kmip_server_hostnames",
  "kmip_keys_mount",
  "node_id",
  "api_addr",
  "seal_pkcs11_library",
  "seal_pkcs11_token_label",
  "seal_pkcs11_key_label",
  "seal_pkcs11_pin_file",
  "hsm_pkcs11_library",
  "hsm_pkcs11_token_label",
  "hsm_pkcs11_pin_file",
]);

/** Environment variables and the config fields they set. */
export const ENVIRONMENT_VARIABLES: Record<string, keyof ConfigSource> = {
  KEYWARD_LISTEN: "listen",
  KEYWARD_DATA_DIR: "data_dir",
  KEYWARD_STORAGE: "storage",
  KEYWARD_STORAGE_CA: "storage_ca",
  KEYWARD_TLS_CERT_FILE: "tls_cert_file",
  KEYWARD_TLS_KEY_FILE: "tls_key_file",
  KEYWARD_LOG_LEVEL: "log_level",
  KEYWARD_MAX_REQUEST_SIZE: "max_request_size",
  KEYWARD_JOB_INTERVAL_MS: "job_interval_ms",
  KEYWARD_KMIP_LISTEN: "kmip_listen",
  KEYWARD_KMIP_TLS_CERT_FILE: "kmip_tls_cert_file",
  KEYWARD_KMIP_TLS_KEY_FILE: "kmip_tls_key_file",
  KEYWARD_KMIP_CLIENT_CA_FILE: "kmip_client_ca_file",
  KEYWARD_KMIP_SERVER_HOSTNAMES: "kmip_server_hostnames",
  KEYWARD_KMIP_KEYS_MOUNT: "kmip_keys_mount",
  KEYWARD_NODE_ID: "node_id",
  KEYWARD_API_ADDR: "api_addr",
  KEYWARD_SEAL_PKCS11_LIBRARY: "seal_pkcs11_library",
  KEYWARD_SEAL_PKCS11_TOKEN_LABEL: "seal_pkcs11_token_label",
  KEYWARD_SEAL_PKCS11_KEY_LABEL: "seal_pkcs11_key_label",
  KEYWARD_SEAL_PKCS11_PIN_FILE: "seal_pkcs11_pin_file",
  KEYWARD_SEAL_PKCS11_PIN: "seal_pkcs11_pin",
  KEYWARD_HSM_PKCS11_LIBRARY: "hsm_pkcs11_library",
  KEYWARD_HSM_PKCS11_TOKEN_LABEL: "hsm_pkcs11_token_label",
  KEYWARD_HSM_PKCS11_PIN_FILE: "hsm_pkcs11_pin_file",
  KEYWARD_HSM_PKCS11_PIN: "hsm_pkcs11_pin",
};

function configError(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", `invalid configuration "${field}": ${message}`, {
    field,
  });
}

/** Reads a JSON config file; unknown fields are rejected so a typo does not pass silently. */
export function readConfigFile(path: string): ConfigSource {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new KeywardError("invalid_request", `cannot read config file ${path}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new KeywardError("invalid_json", `config file ${path} is not valid JSON`, {
      cause: error,
    });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new KeywardError("invalid_json", `config file ${path} must contain a JSON object`);
  }
  for (const field of Object.keys(parsed)) {
    const token = PKCS11_TOKENS.find((fields) => fields.pin === field);
    if (token !== undefined) {
      throw new KeywardError(
        "unknown_field",
        `config file ${path} must not contain the PIN "${field}": put it in a file named by ${token.pinFile}, or in ${token.pinVariable}`,
        { field },
      );
    }
    if (!FILE_FIELDS.has(field as keyof ConfigSource)) {
      throw new KeywardError("unknown_field", `unknown field "${field}" in config file ${path}`, {
        field,
      });
    }
  }
  return parsed as ConfigSource;
}

export function readEnvironment(env: NodeJS.ProcessEnv): ConfigSource {
  const source: Record<string, string> = {};
  for (const [name, field] of Object.entries(ENVIRONMENT_VARIABLES)) {
    const value = env[name];
    if (value !== undefined && value !== "") source[field] = value;
  }
  return source as ConfigSource;
}

/** Splits `HOST:PORT`, `[IPv6]:PORT` or `:PORT`. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  if (!match) throw configError("listen", `expected HOST:PORT, got "${listen}"`);
  const host = match[1] ?? match[2] ?? "";
  const port = Number(match[3]);
  if (port > 65535) throw configError("listen", `port ${port} is out of range 0-65535`);
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1";
  return false;
}

function toPositiveInteger(field: string, value: number | string | undefined, fallback: number) {
  if (value === undefined) return fallback;
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(number) || number <= 0) {
    throw configError(field, `expected a positive integer, got "${value}"`);
  }
  return number;
}

/**
 * Merges the sources, later ones winning (file, then environment, then
 * flags), and validates the result. Without TLS the server may listen only
 * on loopback, because tokens and plaintext would otherwise cross the
 * network in the clear.
 */
export function resolveServerConfig(...sources: ConfigSource[]): ServerConfig {
  const merged: ConfigSource = {};
  for (const source of sources) {
    for (const [field, value] of Object.entries(source)) {
      if (value !== undefined) (merged as Record<string, unknown>)[field] = value;
    }
  }

  const { host, port } = parseListen(merged.listen ?? DEFAULT_LISTEN);
  const tlsCertFile = merged.tls_cert_file;
  const tlsKeyFile = merged.tls_key_file;
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    throw configError("tls_key_file", "TLS needs both a certificate file and a key file");
  }
  if (tlsCertFile === undefined && !isLoopback(host)) {
    throw configError(
      "listen",
      `refusing to listen on ${host} without TLS; set a TLS certificate and key, or listen on 127.0.0.1`,
    );
  }

  const logLevel = (merged.log_level ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw configError("log_level", `expected one of ${LOG_LEVELS.join(", ")}`);
  }

  const dataDir = resolve(merged.data_dir ?? DEFAULT_DATA_DIR);
  const storage = merged.storage ?? dataDir;
  try {
    parseStorageLocation(storage);
  } catch (error) {
    throw configError("storage", (error as Error).message);
  }

  const sealPkcs11 = resolveSealPkcs11Config(merged);
  if (sealPkcs11 !== undefined && merged.dev === true) {
    throw configError(
      "dev",
      "dev mode keeps an unseal key in the data directory and cannot run with a PKCS#11 seal; remove the seal_pkcs11_* settings or --dev",
    );
  }

  return Object.freeze({
    host,
    port,
    dataDir,
    storage,
    storageCaFile: merged.storage_ca === undefined ? undefined : resolve(merged.storage_ca),
    tlsCertFile: tlsCertFile === undefined ? undefined : resolve(tlsCertFile),
    tlsKeyFile: tlsKeyFile === undefined ? undefined : resolve(tlsKeyFile),
    logLevel,
    maxRequestBytes: toPositiveInteger(
      "max_request_size",
      merged.max_request_size,
      DEFAULT_MAX_REQUEST_BYTES,
    ),
    dev: merged.dev === true,
    devRootToken: merged.dev_root_token,
    jobIntervalMs: toPositiveInteger("job_interval_ms", merged.job_interval_ms, 60_000),
    kmip: resolveKmipConfig(merged),
    nodeId: merged.node_id === undefined ? undefined : checkNodeId(merged.node_id),
    apiAddress: merged.api_addr === undefined ? undefined : checkApiAddress(merged.api_addr),
    sealPkcs11,
    hsmPkcs11: resolveHsmPkcs11Config(merged),
  });
}

function checkNodeId(nodeId: unknown): string {
  if (typeof nodeId !== "string" || !NODE_ID_PATTERN.test(nodeId)) {
    throw configError(
      "node_id",
      `expected 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit, got ${JSON.stringify(nodeId)}`,
    );
  }
  return nodeId;
}

function checkApiAddress(address: unknown): string {
  if (typeof address !== "string") {
    throw configError(
      "api_addr",
      `expected an http:// or https:// URL, got ${JSON.stringify(address)}`,
    );
  }
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw configError("api_addr", `expected an http:// or https:// URL, got "${address}"`);
  }
  if (url.username !== "" || url.password !== "") {
    // The address is published by the unauthenticated sys/leader, so it must carry no credentials.
    throw configError("api_addr", "the URL must not contain a user name or password");
  }
  if (url.search !== "" || url.hash !== "" || address.includes("?") || address.includes("#")) {
    throw configError("api_addr", `expected a URL without a query or fragment, got "${address}"`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/") {
    throw configError(
      "api_addr",
      `expected an http:// or https:// URL with no path, got "${address}"`,
    );
  }
  return address.replace(/\/$/, "");
}

/**
 * Reads the KMIP settings: none without `kmip_listen`. The three TLS files
 * come together or not at all: without them Keyward issues the server
 * certificate from its own KMIP CA.
 */
function resolveKmipConfig(merged: ConfigSource): KmipConfig | undefined {
  const listen = merged.kmip_listen;
  const fileFields = ["kmip_tls_cert_file", "kmip_tls_key_file", "kmip_client_ca_file"] as const;
  if (listen === undefined) {
    const stray = [
      ...fileFields,
      "kmip_server_hostnames" as const,
      "kmip_keys_mount" as const,
    ].find((field) => merged[field] !== undefined);
    if (stray !== undefined) throw configError(stray, "it needs kmip_listen to enable KMIP");
    return undefined;
  }
  let address: { host: string; port: number };
  try {
    address = parseListen(/:\d{1,5}$/.test(listen) ? listen : `${listen}:${DEFAULT_KMIP_PORT}`);
  } catch {
    throw configError("kmip_listen", `expected HOST or HOST:PORT, got "${listen}"`);
  }
  const givenFiles = fileFields.filter((field) => merged[field] !== undefined);
  const missing = fileFields.find((field) => merged[field] === undefined);
  if (givenFiles.length > 0 && missing !== undefined) {
    throw configError(
      missing,
      `${givenFiles.join(" and ")} also needs ${missing}: give the server certificate, its key and the client CA file together, or none of them to use Keyward's own KMIP CA`,
    );
  }
  const hostnames = readKmipServerHostnames(merged.kmip_server_hostnames);
  if (givenFiles.length > 0 && hostnames.length > 0) {
    throw configError(
      "kmip_server_hostnames",
      "it applies only to the certificate Keyward issues itself; leave it out when the KMIP TLS files are given",
    );
  }
  const absolute = (path: string | undefined) => (path === undefined ? undefined : resolve(path));
  return Object.freeze({
    ...address,
    tlsCertFile: absolute(merged.kmip_tls_cert_file),
    tlsKeyFile: absolute(merged.kmip_tls_key_file),
    clientCaFile: absolute(merged.kmip_client_ca_file),
    serverHostnames: Object.freeze(hostnames),
    keysMount: readKmipKeysMount(merged.kmip_keys_mount),
  });
}

/** Checks `kmip_keys_mount` as a mount path, without the trailing slash. */
function readKmipKeysMount(value: string | undefined): string {
  if (value === undefined) return DEFAULT_KMIP_KEYS_MOUNT;
  try {
    return normaliseMountPath(String(value));
  } catch (error) {
    const reason = error instanceof KeywardError ? error.message : String(error);
    throw configError("kmip_keys_mount", reason);
  }
}

/** Longest DNS name accepted, in characters (RFC 1035). */
const MAX_HOSTNAME_LENGTH = 253;
const HOSTNAME_PATTERN =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Splits `kmip_server_hostnames` and checks that each entry is a DNS name or an IP address. */
function readKmipServerHostnames(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const entries = (Array.isArray(value) ? value : [value])
    .flatMap((entry) => String(entry).split(","))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const entry of entries) {
    if (
      isIP(entry) === 0 &&
      (entry.length > MAX_HOSTNAME_LENGTH || !HOSTNAME_PATTERN.test(entry))
    ) {
      throw configError(
        "kmip_server_hostnames",
        `"${entry}" is neither a DNS name nor an IP address`,
      );
    }
  }
  return [...new Set(entries.map((entry) => (isIP(entry) === 0 ? entry.toLowerCase() : entry)))];
}

/** The settings of one PKCS#11 token, named by their config fields. */
interface Pkcs11TokenFields {
  readonly library: "seal_pkcs11_library" | "hsm_pkcs11_library";
  readonly tokenLabel: "seal_pkcs11_token_label" | "hsm_pkcs11_token_label";
  readonly pinFile: "seal_pkcs11_pin_file" | "hsm_pkcs11_pin_file";
  readonly pin: "seal_pkcs11_pin" | "hsm_pkcs11_pin";
  /** The environment variable that carries the PIN. */
  readonly pinVariable: string;
  /** Further fields that need the library to be set. */
  readonly others: readonly (keyof ConfigSource)[];
  /** The token's purpose as messages name it, such as "the PKCS#11 seal". */
  readonly user: string;
}

const SEAL_PKCS11_TOKEN: Pkcs11TokenFields = {
  library: "seal_pkcs11_library",
  tokenLabel: "seal_pkcs11_token_label",
  pinFile: "seal_pkcs11_pin_file",
  pin: "seal_pkcs11_pin",
  pinVariable: "KEYWARD_SEAL_PKCS11_PIN",
  others: ["seal_pkcs11_key_label"],
  user: "the PKCS#11 seal",
};

const HSM_PKCS11_TOKEN: Pkcs11TokenFields = {
  library: "hsm_pkcs11_library",
  tokenLabel: "hsm_pkcs11_token_label",
  pinFile: "hsm_pkcs11_pin_file",
  pin: "hsm_pkcs11_pin",
  pinVariable: "KEYWARD_HSM_PKCS11_PIN",
  others: [],
  user: "the engines' HSM",
};

const PKCS11_TOKENS = [SEAL_PKCS11_TOKEN, HSM_PKCS11_TOKEN] as const;

/** PKCS#11 key labels Keyward accepts: printable, without leading or trailing spaces. */
const KEY_LABEL_PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/;

/**
 * Reads one PKCS#11 token's settings: none without its library field, else
 * a token label and exactly one PIN source. The PIN file is read when the
 * server opens the token, not here.
 */
function resolvePkcs11Token(
  merged: ConfigSource,
  fields: Pkcs11TokenFields,
): Pkcs11TokenConfig | undefined {
  // A config file may hold any JSON value, so each field is checked to be text.
  for (const field of [fields.library, fields.tokenLabel, fields.pinFile, fields.pin]) {
    const value: unknown = merged[field];
    if (value !== undefined && typeof value !== "string") {
      throw configError(field, `expected a string, got ${JSON.stringify(value)}`);
    }
  }
  const library = merged[fields.library];
  if (library === undefined) {
    const dependent = [fields.tokenLabel, fields.pinFile, fields.pin, ...fields.others];
    const stray = dependent.find((field) => merged[field] !== undefined);
    if (stray !== undefined) {
      throw configError(stray, `it needs ${fields.library} to enable ${fields.user}`);
    }
    return undefined;
  }
  const libraryPath = resolve(library);
  if (!existsSync(libraryPath)) {
    throw configError(
      fields.library,
      `the PKCS#11 library ${libraryPath} does not exist; give the path of the HSM vendor's .so file`,
    );
  }

  const tokenLabel = merged[fields.tokenLabel];
  if (tokenLabel === undefined || tokenLabel === "") {
    throw configError(fields.tokenLabel, `${fields.user} needs the label of its token`);
  }
  if (
    Buffer.byteLength(tokenLabel, "utf8") > MAX_TOKEN_LABEL_BYTES ||
    tokenLabel.trim() !== tokenLabel
  ) {
    throw configError(
      fields.tokenLabel,
      `expected at most ${MAX_TOKEN_LABEL_BYTES} bytes without leading or trailing spaces, got "${tokenLabel}"`,
    );
  }

  return {
    library: libraryPath,
    tokenLabel,
    readPin: pinReader(merged[fields.pinFile], merged[fields.pin], fields),
  };
}

/** Reads the PKCS#11 seal settings: the token's (see `resolvePkcs11Token`) and the wrapping key label. */
function resolveSealPkcs11Config(merged: ConfigSource): SealPkcs11Config | undefined {
  const token = resolvePkcs11Token(merged, SEAL_PKCS11_TOKEN);
  if (token === undefined) return undefined;

  const keyLabel = merged.seal_pkcs11_key_label ?? DEFAULT_WRAPPING_KEY_LABEL;
  if (!KEY_LABEL_PATTERN.test(keyLabel)) {
    throw configError(
      "seal_pkcs11_key_label",
      `expected 1 to 128 printable ASCII characters without leading or trailing spaces, got "${keyLabel}"`,
    );
  }
  return Object.freeze({ ...token, keyLabel });
}

/** Reads the settings of the HSM that engines keep keys in (see `resolvePkcs11Token`). */
function resolveHsmPkcs11Config(merged: ConfigSource): Pkcs11TokenConfig | undefined {
  const token = resolvePkcs11Token(merged, HSM_PKCS11_TOKEN);
  return token === undefined ? undefined : Object.freeze(token);
}

function pinReader(
  pinFile: string | undefined,
  pin: string | undefined,
  fields: Pkcs11TokenFields,
): () => string {
  if (pinFile !== undefined && pin !== undefined) {
    throw configError(
      fields.pinFile,
      `set either ${fields.pinFile} or ${fields.pinVariable}, not both`,
    );
  }
  if (pin !== undefined) return () => pin;
  if (pinFile === undefined) {
    throw configError(
      fields.pinFile,
      `${fields.user} needs the token's user PIN: name a file that contains it with ${fields.pinFile}, or set ${fields.pinVariable}`,
    );
  }
  const path = resolve(pinFile);
  return () => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw configError(
        fields.pinFile,
        `cannot read the PIN file ${path}: ${(error as NodeJS.ErrnoException).code ?? "read failed"}`,
      );
    }
    // Editors and `echo` end the file with a newline, which is not part of the PIN.
    const value = text.replace(/\r?\n$/, "");
    if (value === "") throw configError(fields.pinFile, `the PIN file ${path} is empty`);
    return value;
  };
}
