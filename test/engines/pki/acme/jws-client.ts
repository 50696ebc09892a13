import type { webcrypto } from "node:crypto";
import { exportJWK, FlattenedSign, generateKeyPair, type JWK } from "jose";
import type { TestApp } from "../../../helpers/app.ts";

/** What `post` signs and sends; each field overrides one part of a well-formed request. */
export interface PostOptions {
  /** Payload object, or "" for POST-as-GET. */
  payload: object | "";
  /** Replaces or adds protected header fields; `undefined` values remove a field. */
  header?: Record<string, unknown>;
  /** Sign with the key in `jwk` instead of `kid`. */
  useJwk?: boolean;
  /** Replaces the whole body. */
  body?: unknown;
  contentType?: string;
  /** Signs with this key instead of the account key. */
  signingKey?: webcrypto.CryptoKey;
}

/**
 * A minimal ACME client over `inject()`, so tests can send requests that
 * real clients never would: every part of the JWS can be overridden.
 */
export class RawAcmeClient {
  readonly t: TestApp;
  directory: Record<string, string> = {};
  kid = "";
  jwk: JWK = {};
  privateKey!: webcrypto.CryptoKey;

  constructor(t: TestApp) {
    this.t = t;
  }

  /** Loads the directory and creates an ES256 account key. */
  async init(directoryPath: string): Promise<void> {
    const response = await this.t.request({ method: "GET", url: directoryPath, token: null });
    this.directory = response.json();
    const pair = await generateKeyPair("ES256", { extractable: true });
    this.privateKey = pair.privateKey;
    this.jwk = await exportJWK(pair.publicKey);
  }

  async nonce(): Promise<string> {
    const response = await this.t.request({
      method: "HEAD",
      url: new URL(this.directory.newNonce!).pathname,
      token: null,
    });
    return String(response.headers["replay-nonce"]);
  }

  /** Builds the JWS for `url`, with a fresh nonce unless the header sets one. */
  async sign(url: string, options: PostOptions): Promise<object> {
    const header: Record<string, unknown> = {
      alg: "ES256",
      nonce: await this.nonce(),
      url,
      ...(options.useJwk ? { jwk: this.jwk } : { kid: this.kid }),
      ...options.header,
    };
    for (const [name, value] of Object.entries(header))
      if (value === undefined) delete header[name];
    const payload =
      options.payload === ""
        ? new Uint8Array()
        : new TextEncoder().encode(JSON.stringify(options.payload));
    return new FlattenedSign(payload)
      .setProtectedHeader(header as { alg: string })
      .sign(options.signingKey ?? this.privateKey);
  }

  async post(url: string, options: PostOptions) {
    const body = options.body !== undefined ? options.body : await this.sign(url, options);
    return this.t.request({
      method: "POST",
      url: new URL(url).pathname,
      token: null,
      headers: { "content-type": options.contentType ?? "application/jose+json" },
      payload: typeof body === "string" ? body : JSON.stringify(body),
    });
  }

  async register(): Promise<void> {
    const response = await this.post(this.directory.newAccount!, {
      payload: { termsOfServiceAgreed: true },
      useJwk: true,
    });
    if (response.statusCode !== 201) throw new Error(`newAccount failed: ${response.body}`);
    this.kid = String(response.headers.location);
  }
}
