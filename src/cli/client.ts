import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { readInputFile } from "./files.ts";

/** Connection settings of the CLI: the server address and credentials. */
export interface ClientOptions {
  /** Base address, such as `http://127.0.0.1:8200`. */
  address: string;
  token?: string;
  /** A PEM file of CA certificates to trust for an `https` address. */
  caCertFile?: string;
  /** Request timeout in milliseconds. */
  timeoutMs?: number;
}

export interface ClientResponse {
  status: number;
  body: unknown;
}

/** An error response from the server, with its stable code when it sent one. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly code: string | undefined;

  constructor(status: number, message: string, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function errorFromBody(status: number, body: unknown): ApiError {
  const errorBody = body as { errors?: unknown; code?: unknown } | undefined;
  const messages = Array.isArray(errorBody?.errors) ? errorBody.errors.map(String) : [];
  const code = typeof errorBody?.code === "string" ? errorBody.code : undefined;
  const message = messages.length > 0 ? messages.join("; ") : `the server returned HTTP ${status}`;
  return new ApiError(status, message, code);
}

/** OpenSSL verification codes that mean the server's certificate chain is not trusted. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
]);

/**
 * Returns an error that adds what to do next to a failed verification of
 * the server's TLS certificate, or undefined for any other error.
 */
function tlsVerificationError(error: NodeJS.ErrnoException, origin: string): Error | undefined {
  const failure = `cannot verify the TLS certificate of ${origin}: ${error.message}`;
  if (error.code !== undefined && UNTRUSTED_CERTIFICATE_CODES.has(error.code)) {
    return new Error(
      `${failure}. Set KEYWARD_CACERT or --ca-cert to a PEM file of the CA certificates that signed the server's certificate`,
      { cause: error },
    );
  }
  if (error.code === "CERT_HAS_EXPIRED" || error.code === "CERT_NOT_YET_VALID") {
    return new Error(
      `${failure}. The server needs a TLS certificate that is valid now; check its validity dates and this machine's clock`,
      { cause: error },
    );
  }
  if (error.code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new Error(
      `${failure}. Use a host name or IP address in KEYWARD_ADDR or --address that the certificate names, or give the server a certificate for this name`,
      { cause: error },
    );
  }
  return undefined;
}

/**
 * Returns an error that names the likely cause of a failed connection: a
 * scheme that does not match the server's, or a host name that does not
 * resolve. Returns undefined for any other error.
 */
function connectionError(error: NodeJS.ErrnoException, url: URL): Error | undefined {
  if (url.protocol === "https:" && error.code === "EPROTO") {
    // OpenSSL's message reads "…:SSL routines:<function>:<reason>:<source file>:<line>:".
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1] ?? error.code;
    return new Error(
      `TLS handshake with ${url.origin} failed (${reason}); if the server serves plain HTTP, use an http:// address`,
      { cause: error },
    );
  }
  if (url.protocol === "http:" && error.code === "ECONNRESET") {
    return new Error(
      `${url.origin} closed the connection without an HTTP response; if the server serves HTTPS, use an https:// address`,
      { cause: error },
    );
  }
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN") {
    return new Error(`cannot resolve the host name of ${url.origin} (${error.code})`, {
      cause: error,
    });
  }
  return undefined;
}

/** Reads a CA bundle and checks that it contains at least one PEM certificate. */
function readCaFile(path: string): Buffer {
  const ca = readInputFile(path, "the CA certificate file (--ca-cert or KEYWARD_CACERT)");
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(
      `the CA certificate file "${path}" (--ca-cert or KEYWARD_CACERT) contains no PEM certificate`,
    );
  }
  return ca;
}

/** A small HTTP client for Keyward's API, on Node's http and https modules. */
export class KeywardClient {
  readonly #options: ClientOptions;
  readonly #ca: Buffer | undefined;

  constructor(options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.address);
    } catch {
      throw new Error(
        `invalid server address "${options.address}"; expected a URL such as http://127.0.0.1:8200`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(
        `invalid server address "${options.address}"; the scheme must be http or https`,
      );
    }
    this.#options = options;
    this.#ca = options.caCertFile ? readCaFile(options.caCertFile) : undefined;
  }

  /**
   * Sends one request. A 2xx returns the parsed body (undefined for 204);
   * anything else throws an ApiError unless `allowStatus` lists it.
   */
  async request(
    method: string,
    path: string,
    body?: unknown,
    allowStatus: number[] = [],
  ): Promise<ClientResponse> {
    const url = new URL(path.replace(/^\/+/, "/"), this.#options.address);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: "application/json" };
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(payload.length);
    }
    if (this.#options.token) headers["x-vault-token"] = this.#options.token;

    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const response = await new Promise<ClientResponse>((resolve, reject) => {
      const req = send(
        url,
        { method, headers, ca: this.#ca, timeout: this.#options.timeoutMs ?? 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = text === "" ? undefined : JSON.parse(text);
            } catch {
              parsed = text;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`request to ${url.origin} timed out`)));
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "ECONNREFUSED") {
          reject(
            new Error(
              `cannot connect to ${url.origin}: connection refused; is the server running?`,
            ),
          );
        } else {
          reject(tlsVerificationError(error, url.origin) ?? connectionError(error, url) ?? error);
        }
      });
      req.end(payload);
    });

    if (response.status >= 300 && !allowStatus.includes(response.status)) {
      throw errorFromBody(response.status, response.body);
    }
    return response;
  }
}
