import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import type { PoolConfig } from "pg";
import { KeywardError } from "../../errors.ts";
import {
  type PostgresTimeouts,
  parsePostgresTimeouts,
  TIMEOUT_PARAMETERS,
  timeoutSettings,
} from "./timeouts.ts";

/**
 * The `sslmode` values Keyward accepts, with libpq's meaning:
 * - `disable`: no TLS.
 * - `require`: TLS without certificate checks, unless a CA file is given,
 *   then the chain is checked as with `verify-ca` (libpq does the same when
 *   a root certificate is present).
 * - `verify-ca`: TLS, and the server's chain must lead to the CA file (or
 *   to Node's built-in CAs when no file is given).
 * - `verify-full`: as `verify-ca`, and the certificate must name the host.
 *
 * libpq's `allow` and `prefer` fall back to plaintext when TLS fails; the pg
 * driver cannot, so they are rejected instead of silently meaning something
 * else.
 */
export const SSL_MODES = ["disable", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** The query parameters a storage URL may carry. */
const URL_PARAMETERS = [
  "sslmode",
  "sslrootcert",
  "application_name",
  "options",
  "host",
  ...TIMEOUT_PARAMETERS,
] as const;

/** The `application_name` the server shows for Keyward's sessions unless the URL sets one. */
export const DEFAULT_APPLICATION_NAME = "keyward";

export interface PostgresConnectionOptions {
  /** A PEM file of CA certificates that the server's certificate must chain to. */
  caFile?: string;
}

/** A parsed storage URL: what the pg pool needs, and how to name the database in messages. */
export interface PostgresConnection {
  config: PoolConfig;
  sslMode: SslMode;
  /** Host, port and database for messages and logs, without user or password. */
  description: string;
  /** The host the pool connects to, or a Unix socket folder; undefined leaves pg's default. */
  host: string | undefined;
  /** The bounds on waits for the database, which `config` already carries. */
  timeouts: PostgresTimeouts;
}

function invalidUrl(reason: string): KeywardError {
  // The URL itself is never quoted: it may contain a password.
  return new KeywardError("invalid_request", `invalid PostgreSQL storage URL: ${reason}`);
}

function decodeComponent(value: string, part: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw invalidUrl(`the ${part} has an invalid percent-encoding`);
  }
}

/**
 * Describes a storage URL for messages and logs: scheme, host, port and
 * database, never the user name or the password. Returns a fixed text for a
 * URL that does not parse.
 */
export function describePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "postgres://(invalid URL)";
  }
  const socketFolder = parsed.searchParams.get("host");
  const host = socketFolder ?? (parsed.host === "" ? "localhost" : parsed.host);
  return `postgres://${host}${parsed.pathname}`;
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new KeywardError("invalid_request", `cannot read the storage CA file ${path}`, {
      cause: error,
    });
  }
}

/** Builds the TLS options for pg from an sslmode and an optional CA file. */
function tlsOptions(sslMode: SslMode, caFile: string | undefined): false | ConnectionOptions {
  if (sslMode === "disable") return false;
  const ca = caFile === undefined ? undefined : readCaFile(caFile);
  if (sslMode === "require" && ca === undefined) return { rejectUnauthorized: false };
  const options: ConnectionOptions = { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
  // `require` with a CA file and `verify-ca` check the chain only.
  if (sslMode !== "verify-full") options.checkServerIdentity = () => undefined;
  return options;
}

function parseSslMode(value: string | null): SslMode {
  // NOTE: without sslmode the connection is plaintext, as with the pg
  // driver; libpq's default, `prefer`, tries TLS first.
  if (value === null) return "disable";
  if ((SSL_MODES as readonly string[]).includes(value)) return value as SslMode;
  throw invalidUrl(
    `sslmode ${JSON.stringify(value)} is not supported; use one of ${SSL_MODES.join(", ")} (allow and prefer would fall back to plaintext)`,
  );
}

/**
 * Parses a `postgres://` or `postgresql://` URL into pg pool settings:
 * `postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…`. The query may
 * carry `sslmode`, `sslrootcert` (a CA file, overridden by
 * `options.caFile`), `application_name`, `options` (server settings such as
 * `-c search_path=keyward`), `host` (a Unix socket folder) and the
 * timeouts that `parsePostgresTimeouts` reads. Any other parameter, and
 * a parameter given twice, is rejected, so a setting Keyward would ignore
 * does not pass silently.
 * Throws `invalid_request`; messages never contain the URL.
 */
export function parsePostgresUrl(
  url: string,
  options: PostgresConnectionOptions = {},
): PostgresConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidUrl("it does not parse as a URL");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw invalidUrl("the scheme must be postgres:// or postgresql://");
  }
  const seen = new Set<string>();
  for (const name of parsed.searchParams.keys()) {
    if (!(URL_PARAMETERS as readonly string[]).includes(name)) {
      throw invalidUrl(
        `parameter ${JSON.stringify(name)} is not supported; supported parameters: ${URL_PARAMETERS.join(", ")}`,
      );
    }
    // Keyward would use the first value where other clients may use the last, so a repeat is ambiguous.
    if (seen.has(name)) {
      throw invalidUrl(`parameter ${name} is given more than once; give it once`);
    }
    seen.add(name);
  }

  const sslMode = parseSslMode(parsed.searchParams.get("sslmode"));
  const caFile = options.caFile ?? parsed.searchParams.get("sslrootcert") ?? undefined;
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const host = parsed.searchParams.get("host") ?? (hostname === "" ? undefined : hostname);
  const database = decodeComponent(parsed.pathname.replace(/^\//, ""), "database name");
  if (database.includes("/")) throw invalidUrl("the path must be a single database name");

  const timeouts = parsePostgresTimeouts(parsed.searchParams, invalidUrl);

  const config: PoolConfig = {
    ...timeoutSettings(timeouts),
    ssl: tlsOptions(sslMode, caFile),
    application_name: parsed.searchParams.get("application_name") ?? DEFAULT_APPLICATION_NAME,
  };
  if (host !== undefined) config.host = host;
  if (parsed.port !== "") config.port = Number(parsed.port);
  if (parsed.username !== "") config.user = decodeComponent(parsed.username, "user name");
  if (parsed.password !== "") config.password = decodeComponent(parsed.password, "password");
  if (database !== "") config.database = database;
  const serverOptions = parsed.searchParams.get("options");
  if (serverOptions !== null) config.options = serverOptions;

  return { config, sslMode, description: describePostgresUrl(url), host, timeouts };
}

/** True when the host is a Unix socket folder or a loopback address, where plaintext stays on the machine. */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined || host.startsWith("/") || host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}
