import { Agent, request } from "node:https";

/** Time limit of a request without a long-poll wait, in milliseconds. */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Max size of a response body, in bytes. A state carries every artifact
 * of the device with its sealed secrets, a few kilobytes each, so 32 MiB
 * leaves room for thousands of artifacts. A larger body is read no further,
 * because buffering it could exhaust the endpoint's memory.
 */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/** A failed device API request: an HTTP error status, or no response at all (`status` undefined). */
export class DeviceApiError extends Error {
  override readonly name = "DeviceApiError";
  /** HTTP status, or undefined for network errors and timeouts. */
  readonly status: number | undefined;
  /** The server's stable error code, such as `device_authentication_failed`. */
  readonly code: string | undefined;

  constructor(message: string, status?: number, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
  }

  /** True for failures that a later retry can fix without a change on this side. */
  get transient(): boolean {
    return this.status === undefined || this.status >= 500 || this.status === 429;
  }
}

/** Response of a request: the status and the parsed JSON body (undefined when empty). */
export interface DeviceApiResponse {
  status: number;
  body: unknown;
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal | undefined;
  /** Time limit of the whole request, from connecting to the last byte of the body, in milliseconds. */
  timeoutMs?: number;
  /** Statuses returned as they are instead of thrown, such as 304. */
  allowStatus?: readonly number[];
  /** False for enrolment, which is sent without a client certificate. */
  clientCertificate?: boolean;
}

/** The client certificate and key the agent presents, in PEM. */
export interface ClientIdentity {
  /** The identity certificate, followed by its CA chain. */
  certificateChain: string;
  privateKey: string;
}

/** Takes the payload out of the project's `{data: ...}` envelope when the server sends one. */
function unwrap(body: unknown): unknown {
  if (body !== null && typeof body === "object" && "data" in body && "request_id" in body) {
    return (body as { data: unknown }).data;
  }
  return body;
}

function errorFrom(status: number, body: unknown, what: string): DeviceApiError {
  const parsed = body as { errors?: unknown; code?: unknown } | undefined;
  const messages = Array.isArray(parsed?.errors) ? parsed.errors.map(String) : [];
  const code = typeof parsed?.code === "string" ? parsed.code : undefined;
  const detail = messages.length > 0 ? `: ${messages.join("; ")}` : "";
  return new DeviceApiError(`${what} failed with HTTP ${status}${detail}`, status, code);
}

/**
 * An HTTPS client for the device API. Requests after enrolment present the
 * device's identity certificate (mutual TLS) over kept-alive connections,
 * so a long poll reuses one connection round after round.
 */
export class DeviceClient {
  readonly #server: URL;
  readonly #ca: Buffer | undefined;
  #identityAgent: Agent | undefined;
  readonly #anonymousAgent: Agent;

  constructor(server: URL, ca: Buffer | undefined) {
    this.#server = server;
    this.#ca = ca;
    this.#anonymousAgent = new Agent({ keepAlive: false, ...(ca ? { ca } : {}) });
  }

  /** Uses `identity` for every later authenticated request and closes open connections of the old one. */
  setIdentity(identity: ClientIdentity): void {
    this.#identityAgent?.destroy();
    this.#identityAgent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      cert: identity.certificateChain,
      key: identity.privateKey,
      ...(this.#ca ? { ca: this.#ca } : {}),
    });
  }

  /** Closes every connection. */
  close(): void {
    this.#identityAgent?.destroy();
    this.#anonymousAgent.destroy();
  }

  /**
   * Sends one JSON request. A 2xx response (or a status in `allowStatus`)
   * returns the body with any `{data: ...}` envelope removed. Any other
   * status throws a `DeviceApiError`. The error message contains the path and the
   * server's message but never the request body. The request fails when it
   * takes longer than `timeoutMs` in all (a server that sends a byte now and
   * then cannot hold it open) or when the body exceeds `MAX_RESPONSE_BYTES`.
   */
  request(method: string, path: string, options: RequestOptions = {}): Promise<DeviceApiResponse> {
    const agent = options.clientCertificate === false ? this.#anonymousAgent : this.#identityAgent;
    const what = `${method} ${path.split("?")[0]}`;
    if (agent === undefined) {
      return Promise.reject(new Error(`${what}: the agent has no identity certificate yet`));
    }
    const url = new URL(path, this.#server);
    const payload =
      options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;

    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new DeviceApiError(`${what}: aborted`));

    return new Promise((resolve, reject) => {
      let settled = false;
      // The abort listener and the deadline are removed when the request settles, so a
      // long-lived signal does not collect one listener per request.
      const onAbort = () => fail(new Error("aborted"));
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal?.removeEventListener("abort", onAbort);
        outcome();
      };
      const networkError = (error: Error) =>
        new DeviceApiError(`${what}: ${error.message}`, undefined, undefined, { cause: error });
      // Rejects with `error` first, then closes the connection, whose own errors come too late to count.
      const fail = (error: Error, status?: number) => {
        settle(() =>
          reject(
            status === undefined
              ? networkError(error)
              : new DeviceApiError(`${what}: ${error.message}`, status),
          ),
        );
        outgoing.destroy();
      };

      const outgoing = request(
        url,
        {
          method,
          agent,
          headers: {
            accept: "application/json",
            ...(payload
              ? { "content-type": "application/json", "content-length": String(payload.length) }
              : {}),
          },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          const tooLarge = new Error(
            `the response body is larger than ${MAX_RESPONSE_BYTES} bytes (HTTP ${status})`,
          );
          if (Number(response.headers["content-length"] ?? 0) > MAX_RESPONSE_BYTES) {
            fail(tooLarge);
            return;
          }
          const chunks: Buffer[] = [];
          let received = 0;
          response.on("data", (chunk: Buffer) => {
            received += chunk.length;
            if (received > MAX_RESPONSE_BYTES) {
              fail(tooLarge);
              return;
            }
            chunks.push(chunk);
          });
          response.on("error", (error) => fail(error));
          response.on("end", () => {
            if (settled) return;
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown;
            try {
              body = text === "" ? undefined : JSON.parse(text);
            } catch {
              fail(new Error(`the response is not JSON (HTTP ${status})`), status);
              return;
            }
            const allowed = options.allowStatus?.includes(status) ?? false;
            if ((status >= 200 && status < 300) || allowed) {
              settle(() => resolve({ status, body: unwrap(body) }));
            } else {
              settle(() => reject(errorFrom(status, body, what)));
            }
          });
        },
      );
      // A deadline for the whole exchange: an idle timeout alone would let a server that
      // sends one byte now and then keep the request, and with it the agent's round, open.
      const deadline = setTimeout(
        () => fail(new Error(`timed out after ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      outgoing.on("error", (error: Error) => fail(error));
      outgoing.end(payload);
    });
  }
}
