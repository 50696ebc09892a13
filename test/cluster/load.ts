import http from "node:http";

/** Error codes of a connection that failed or was cut, which the client retries on another node. */
const CONNECTION_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ECONNABORTED"]);
/** Attempts of one request over all nodes before the client gives up. */
const MAX_ATTEMPTS = 12;
/** Pause after every node in turn refused the request, in milliseconds. */
const ROUND_PAUSE_MS = 100;
/** Time limit of one attempt, in milliseconds. A request that times out is a failure and is not sent again. */
const ATTEMPT_TIMEOUT_MS = 30_000;

export interface ClientResponse {
  status: number;
  body: Record<string, unknown>;
  /** Attempts made, 1 when the first node returned a response. */
  attempts: number;
}

/** True for the errors of a connection that was refused or cut, as when a node is killed. */
export function isConnectionError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && CONNECTION_ERROR_CODES.has(code)) return true;
  return error instanceof Error && error.message.includes("socket hang up");
}

/**
 * A client of several nodes, as a load balancer without health checks
 * would be: each request goes to the next node in turn, and a request whose
 * connection is refused or cut is sent again to the next node. A request
 * that reached a node and got any HTTP response is never sent again.
 */
export class RetryingClient {
  readonly #addresses: readonly string[];
  readonly #token: string;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  #next: number;
  /** Requests sent again after a connection error. */
  retried = 0;

  constructor(addresses: readonly string[], token: string, firstNode = 0) {
    this.#addresses = addresses;
    this.#token = token;
    this.#next = firstNode;
  }

  async request(method: string, path: string, body?: unknown): Promise<ClientResponse> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const address = this.#addresses[this.#next % this.#addresses.length] as string;
      this.#next += 1;
      try {
        const response = await this.#send(address, method, path, body);
        return { ...response, attempts: attempt };
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        lastError = error;
        if (attempt === 1) this.retried += 1;
        if (attempt % this.#addresses.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, ROUND_PAUSE_MS));
        }
      }
    }
    throw new Error(
      `${method} ${path}: no node accepted the connection in ${MAX_ATTEMPTS} attempts`,
      {
        cause: lastError,
      },
    );
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(
    address: string,
    method: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = http.request(
        new URL(`/v1/${path}`, address),
        {
          method,
          agent: this.#agent,
          timeout: ATTEMPT_TIMEOUT_MS,
          headers: {
            "x-vault-token": this.#token,
            ...(payload === undefined ? {} : { "content-type": "application/json" }),
          },
        },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
          });
          response.on("error", reject);
          response.on("end", () => {
            try {
              resolve({
                status: response.statusCode ?? 0,
                body: text === "" ? {} : JSON.parse(text),
              });
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      request.on("timeout", () => {
        request.destroy(new Error(`${method} ${path} timed out after ${ATTEMPT_TIMEOUT_MS} ms`));
      });
      request.on("error", reject);
      request.end(payload);
    });
  }
}

/** What the nodes acknowledged to the load clients, each item after a 2xx response. */
export interface Acknowledged {
  keys: string[];
  policies: Map<string, string>;
  ciphertexts: { key: string; ciphertext: string; plaintext: string }[];
  /** Operations that failed: an unexpected status, a wrong result, or no node accepting the connection. */
  failures: string[];
  /** Operations that succeeded, retried ones included. */
  operations: number;
  /** Creates that were sent again after a connection error and found the key already there. */
  createsFoundExisting: number;
}

export function newAcknowledged(): Acknowledged {
  return {
    keys: [],
    policies: new Map(),
    ciphertexts: [],
    failures: [],
    operations: 0,
    createsFoundExisting: 0,
  };
}

/** Runs `operation` and records its failure; returns its result, or undefined when it failed. */
async function attempt<T>(
  acknowledged: Acknowledged,
  label: string,
  operation: () => Promise<T>,
): Promise<T | undefined> {
  try {
    const result = await operation();
    acknowledged.operations += 1;
    return result;
  } catch (error) {
    const cause = (error as Error).cause;
    acknowledged.failures.push(
      `${label}: ${(error as Error).message}${cause instanceof Error ? ` (${cause.message})` : ""}`,
    );
    return undefined;
  }
}

function expectStatus(response: ClientResponse, expected: number, label: string): void {
  if (response.status !== expected) {
    throw new Error(
      `${label} returned ${response.status}, expected ${expected}: ${JSON.stringify(response.body)}`,
    );
  }
}

/**
 * Creates transit keys, writes a policy for each, and encrypts with each,
 * until `stopped()` returns true. Names start with `prefix`. A create
 * sent again after a connection error may find the key that its first
 * attempt created. Transit's create then returns the existing key with a
 * warning, which counts as success.
 */
export async function runWriter(
  client: RetryingClient,
  prefix: string,
  acknowledged: Acknowledged,
  stopped: () => boolean,
): Promise<void> {
  for (let i = 0; !stopped(); i++) {
    const key = `${prefix}-k${i}`;
    const created = await attempt(acknowledged, `create ${key}`, async () => {
      const response = await client.request("POST", `transit/keys/${key}`, {
        type: "aes256-gcm96",
      });
      expectStatus(response, 200, `create ${key}`);
      const warnings = (response.body.warnings as string[] | null | undefined) ?? [];
      if (warnings.some((warning) => warning.includes("already exists"))) {
        if (response.attempts === 1) throw new Error(`create ${key} found an existing key`);
        acknowledged.createsFoundExisting += 1;
      }
      return true;
    });
    if (created === undefined) continue;
    acknowledged.keys.push(key);

    const policyName = `${prefix}-p${i}`;
    const policy = `path "transit/encrypt/${key}" { capabilities = ["update"] }`;
    const written = await attempt(acknowledged, `write policy ${policyName}`, async () => {
      const response = await client.request("PUT", `sys/policies/acl/${policyName}`, { policy });
      expectStatus(response, 204, `write policy ${policyName}`);
      return true;
    });
    if (written) acknowledged.policies.set(policyName, policy);

    const plaintext = Buffer.from(`${key} secret`).toString("base64");
    const ciphertext = await attempt(acknowledged, `encrypt with ${key}`, async () => {
      const response = await client.request("POST", `transit/encrypt/${key}`, { plaintext });
      expectStatus(response, 200, `encrypt with ${key}`);
      return String((response.body.data as { ciphertext: string }).ciphertext);
    });
    if (ciphertext !== undefined) acknowledged.ciphertexts.push({ key, ciphertext, plaintext });
  }
}

/**
 * Encrypts a new plaintext with `key` and decrypts the result, each request
 * on the next node, until `stopped()` returns true. A decrypt that returns
 * another plaintext is a failure.
 */
export async function runCrypto(
  client: RetryingClient,
  key: string,
  prefix: string,
  acknowledged: Acknowledged,
  stopped: () => boolean,
): Promise<void> {
  for (let i = 0; !stopped(); i++) {
    const plaintext = Buffer.from(`${prefix} message ${i}`).toString("base64");
    const ciphertext = await attempt(acknowledged, `encrypt ${prefix}/${i}`, async () => {
      const response = await client.request("POST", `transit/encrypt/${key}`, { plaintext });
      expectStatus(response, 200, `encrypt ${prefix}/${i}`);
      return String((response.body.data as { ciphertext: string }).ciphertext);
    });
    if (ciphertext === undefined) continue;
    acknowledged.ciphertexts.push({ key, ciphertext, plaintext });

    await attempt(acknowledged, `decrypt ${prefix}/${i}`, async () => {
      const response = await client.request("POST", `transit/decrypt/${key}`, { ciphertext });
      expectStatus(response, 200, `decrypt ${prefix}/${i}`);
      const decrypted = (response.body.data as { plaintext: string }).plaintext;
      if (decrypted !== plaintext)
        throw new Error(`decrypt ${prefix}/${i} returned another plaintext`);
    });
  }
}

/** Sums a Prometheus counter or gauge over every series whose labels contain `labels` (such as `outcome="success"`). */
export function sumMetric(text: string, name: string, labels = ""): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!rest.startsWith("{") && !rest.startsWith(" ")) continue;
    if (labels !== "" && !rest.includes(labels)) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}
