import type { LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { AcmeConfig } from "../config.ts";
import { ValidationFailure } from "./failure.ts";
import { resolveAllowed } from "./network.ts";
import type { ValidationTarget } from "./validator.ts";

/** Largest http-01 response body read, in bytes; a key authorization is about 90. */
const MAX_BODY_BYTES = 8 * 1024;

/** Formats a host for a URL: IPv6 addresses in brackets. */
function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

interface Hop {
  status: number;
  location: string | undefined;
  body: string;
}

/**
 * Sends one GET to `url`, connecting only to `address` (already checked
 * against the allowed networks). HTTPS redirect targets are fetched
 * without certificate checks, as RFC 8555 section 8.3 allows.
 */
function fetchOnce(url: URL, address: string, signal: AbortSignal): Promise<Hop> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const family = isIP(address);
  return new Promise((resolve, reject) => {
    const request = send(
      url,
      {
        method: "GET",
        agent: false,
        signal,
        headers: { "user-agent": "Keyward ACME validator", accept: "*/*" },
        rejectUnauthorized: false,
        lookup: (_hostname, options, callback) => {
          const all = (options as { all?: boolean }).all === true;
          if (all) (callback as (e: null, a: LookupAddress[]) => void)(null, [{ address, family }]);
          else (callback as (e: null, a: string, f: number) => void)(null, address, family);
        },
      },
      (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            response.destroy();
            return;
          }
          chunks.push(chunk);
        });
        response.on("close", () =>
          resolve({
            status: response.statusCode ?? 0,
            location: response.headers.location,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end();
  });
}

/**
 * Validates an http-01 challenge (RFC 8555 section 8.3): GET
 * `http://<name>:<http_port>/.well-known/acme-challenge/<token>` must
 * return 200 with the key authorization (surrounding whitespace ignored).
 * Redirects are followed up to `max_redirects` times, only to http URLs
 * on `http_port` and https URLs on `tls_port`, and every host is resolved
 * and checked against the allowed networks again.
 */
export async function validateHttp01(
  target: ValidationTarget,
  config: AcmeConfig,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  let url = new URL(
    `http://${urlHost(target.identifier.value)}:${config.http_port}/.well-known/acme-challenge/${target.token}`,
  );
  for (let redirects = 0; ; redirects++) {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const [address] = await resolveAllowed(host, config, timeoutMs);
    let hop: Hop;
    try {
      hop = await fetchOnce(url, address!, signal);
    } catch (error) {
      const detail = signal.aborted
        ? `timed out fetching ${url.href}`
        : `connecting to ${url.href} failed`;
      throw new ValidationFailure("connection", detail, error);
    }
    if (hop.status >= 300 && hop.status < 400 && hop.location !== undefined) {
      if (redirects >= config.max_redirects) {
        throw new ValidationFailure(
          "connection",
          `more than ${config.max_redirects} redirects from ${target.identifier.value}`,
        );
      }
      url = nextUrl(url, hop.location, config);
      continue;
    }
    if (hop.status !== 200) {
      throw new ValidationFailure(
        "unauthorized",
        `${url.href} returned HTTP ${hop.status}, not 200`,
      );
    }
    if (hop.body.trim() !== target.keyAuthorization) {
      throw new ValidationFailure(
        "incorrectResponse",
        `${url.href} did not return the key authorization`,
      );
    }
    return;
  }
}

function nextUrl(current: URL, location: string, config: AcmeConfig): URL {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (error) {
    throw new ValidationFailure("connection", "a redirect has an invalid Location", error);
  }
  const defaultPort = next.protocol === "https:" ? 443 : 80;
  const port = next.port === "" ? defaultPort : Number(next.port);
  let allowedPort = -1;
  if (next.protocol === "http:") allowedPort = config.http_port;
  if (next.protocol === "https:") allowedPort = config.tls_port;
  if (port !== allowedPort) {
    throw new ValidationFailure(
      "connection",
      `a redirect points to ${next.protocol}//${next.host}, but only http on port ${config.http_port} and https on port ${config.tls_port} are followed`,
    );
  }
  return next;
}
