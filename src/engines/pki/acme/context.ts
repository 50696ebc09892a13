import { randomBytes } from "node:crypto";
import type { PkiLogger, PkiService } from "../service.ts";
import type { AcmeConfig } from "./config.ts";
import type { NonceStore } from "./nonces.ts";
import type { AcmeStore } from "./storage.ts";
import type { AcmeUrls } from "./urls.ts";
import type { ChallengeValidator } from "./validation/validator.ts";

/** The state shared by the ACME operations of one mount. */
export interface AcmeContext {
  pki: PkiService;
  store: AcmeStore;
  nonces: NonceStore;
  validator: ChallengeValidator;
  clock: () => Date;
  logger: PkiLogger | undefined;
  /** Challenge validations still running in the background. */
  tasks: Set<Promise<void>>;
}

/** One ACME request: the directory it was sent to, its URLs, the request URL and the mount's settings. */
export interface AcmeScope {
  /** The directory's role, or `""` for the mount's default directory. */
  directory: string;
  urls: AcmeUrls;
  /** The absolute URL the request was sent to, as the JWS `url` header must name it. */
  requestUrl: string;
  config: AcmeConfig;
}

/** The response a route sends for a successful ACME request. */
export interface AcmeResponse {
  status: number;
  body?: unknown;
  /** `application/json` unless set, such as `application/pem-certificate-chain` for certificates. */
  contentType?: string;
  location?: string;
  /** Extra Link header values, such as `<…>;rel="up"`. */
  links?: string[];
  /** Seconds a client should wait before polling again. */
  retryAfter?: number;
}

/** Returns a new record id: 128 random bits, base64url. */
export function newId(): string {
  return randomBytes(16).toString("base64url");
}

/** Seconds that clients should wait before polling a pending or processing resource. */
export const POLL_INTERVAL_SECONDS = 1;
