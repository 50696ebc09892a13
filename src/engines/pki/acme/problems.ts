import { isKeywardError } from "../../../errors.ts";

/** The ACME error types this server sends (RFC 8555 section 6.7, RFC 8737, RFC 9773). */
export const PROBLEM_TYPES = [
  "accountDoesNotExist",
  "alreadyRevoked",
  "badCSR",
  "badNonce",
  "badPublicKey",
  "badRevocationReason",
  "badSignatureAlgorithm",
  "caa",
  "compound",
  "connection",
  "dns",
  "externalAccountRequired",
  "incorrectResponse",
  "invalidContact",
  "malformed",
  "orderNotReady",
  "rateLimited",
  "rejectedIdentifier",
  "serverInternal",
  "tls",
  "unauthorized",
  "unsupportedContact",
  "unsupportedIdentifier",
  "userActionRequired",
] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];

export const PROBLEM_PREFIX = "urn:ietf:params:acme:error:";
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** A problem document (RFC 7807) as ACME sends and stores it. */
export interface ProblemDocument {
  type: string;
  detail: string;
  status?: number;
  identifier?: { type: string; value: string };
  subproblems?: ProblemDocument[];
  /** The accepted algorithms, sent with `badSignatureAlgorithm` (RFC 8555 section 6.2). */
  algorithms?: string[];
}

/** The HTTP status each type is sent with unless the thrower chooses another. */
const DEFAULT_STATUS: Partial<Record<ProblemType, number>> = {
  unauthorized: 403,
  orderNotReady: 403,
  userActionRequired: 403,
  rateLimited: 429,
  serverInternal: 500,
};

/**
 * An ACME error. The routes send it as `application/problem+json` with
 * `status`. The detail reaches the client, so it must name the failed
 * check and never carry key material.
 */
export class AcmeProblem extends Error {
  override readonly name = "AcmeProblem";
  readonly type: ProblemType;
  readonly status: number;
  readonly identifier: { type: string; value: string } | undefined;
  readonly subproblems: ProblemDocument[] | undefined;
  readonly algorithms: string[] | undefined;
  /** A Location header to send with the problem, such as the existing account on a keyChange conflict. */
  readonly location: string | undefined;

  constructor(
    type: ProblemType,
    detail: string,
    options: {
      status?: number;
      identifier?: { type: string; value: string };
      subproblems?: ProblemDocument[];
      algorithms?: string[];
      location?: string;
      cause?: unknown;
    } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.status = options.status ?? DEFAULT_STATUS[type] ?? 400;
    this.identifier = options.identifier;
    this.subproblems = options.subproblems;
    this.algorithms = options.algorithms;
    this.location = options.location;
  }

  toDocument(): ProblemDocument {
    const document: ProblemDocument = {
      type: PROBLEM_PREFIX + this.type,
      detail: this.message,
      status: this.status,
    };
    if (this.identifier) document.identifier = this.identifier;
    if (this.subproblems) document.subproblems = this.subproblems;
    if (this.algorithms) document.algorithms = this.algorithms;
    return document;
  }
}

/** Returns a `malformed` problem with status 404, for an account, order or other resource that does not exist. */
export function notFoundProblem(what: string): AcmeProblem {
  return new AcmeProblem("malformed", `${what} not found`, { status: 404 });
}

const INTERNAL_DETAIL = "internal error; the server log has details";

/**
 * Maps anything thrown while serving an ACME request to a problem.
 * PKI errors about names become `rejectedIdentifier`, errors about the CSR
 * `badCSR`, and other client errors `malformed`. Anything else is
 * `serverInternal` with a fixed detail, so internal messages stay in the log.
 */
export function toProblem(error: unknown): AcmeProblem {
  if (error instanceof AcmeProblem) return error;
  if (isKeywardError(error)) {
    switch (error.code) {
      case "name_not_allowed":
        return new AcmeProblem("rejectedIdentifier", error.message, { cause: error });
      case "invalid_certificate":
      case "invalid_csr_signature":
      case "unsupported_key_type":
        return new AcmeProblem("badCSR", error.message, { cause: error });
      case "sealed":
      case "not_initialized":
        return new AcmeProblem("serverInternal", error.message, { status: 503, cause: error });
      case "body_too_large":
        return new AcmeProblem("malformed", error.message, { status: 413, cause: error });
      case "unsupported_media_type":
        return new AcmeProblem("malformed", error.message, { status: 415, cause: error });
      default:
        break;
    }
    if (error.isClientError) {
      return new AcmeProblem("malformed", error.message, {
        status: error.status === 404 ? 404 : 400,
        cause: error,
      });
    }
    return new AcmeProblem("serverInternal", INTERNAL_DETAIL, { cause: error });
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new AcmeProblem("malformed", "the request is invalid", { status, cause: error });
  }
  return new AcmeProblem("serverInternal", INTERNAL_DETAIL, { cause: error });
}
