import { randomBytes } from "node:crypto";
import type { AuthenticatedRequest } from "./authenticate.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { newId, POLL_INTERVAL_SECONDS } from "./context.ts";
import { AcmeProblem, notFoundProblem } from "./problems.ts";
import type { AuthorizationRecord, ChallengeRecord, ChallengeType, Identifier } from "./records.ts";

/** How long a pending authorization lasts, in milliseconds. */
export const PENDING_LIFETIME_MS = 7 * 24 * 3600 * 1000;

/** How long a valid authorization can be reused for new orders, in milliseconds. */
export const VALID_LIFETIME_MS = 30 * 24 * 3600 * 1000;

/**
 * Returns the challenge types offered for an identifier: dns-01 only for a
 * wildcard (RFC 8555 section 7.1.3), no dns-01 for an IP address (RFC 8738
 * section 7), and all three for a DNS name.
 */
export function challengeTypesFor(identifier: Identifier, wildcard: boolean): ChallengeType[] {
  if (wildcard) return ["dns-01"];
  if (identifier.type === "ip") return ["http-01", "tls-alpn-01"];
  return ["http-01", "dns-01", "tls-alpn-01"];
}

/** Creates a pending authorization with a fresh token for each challenge (not yet stored). */
export function createAuthorization(
  context: AcmeContext,
  scope: AcmeScope,
  accountId: string,
  identifier: Identifier,
  wildcard: boolean,
): AuthorizationRecord {
  const now = context.clock();
  const challenges: ChallengeRecord[] = challengeTypesFor(identifier, wildcard).map((type) => ({
    type,
    token: randomBytes(16).toString("base64url"),
    status: "pending",
  }));
  return {
    id: newId(),
    accountId,
    directory: scope.directory,
    identifier,
    wildcard,
    status: "pending",
    expires: new Date(now.getTime() + PENDING_LIFETIME_MS).toISOString(),
    challenges,
    createdAt: now.toISOString(),
  };
}

/** Returns the authorization with `expired` applied when its time has passed; stores the change. */
export async function refreshAuthorization(
  context: AcmeContext,
  authorization: AuthorizationRecord,
): Promise<AuthorizationRecord> {
  const live = authorization.status === "pending" || authorization.status === "valid";
  if (!live || Date.parse(authorization.expires) > context.clock().getTime()) return authorization;
  return context.store.withLock(`authorizations/${authorization.id}`, async () => {
    const current = (await context.store.authorization(authorization.id)) ?? authorization;
    if (current.status !== "pending" && current.status !== "valid") return current;
    const expired: AuthorizationRecord = { ...current, status: "expired" };
    await context.store.putAuthorization(expired);
    return expired;
  });
}

/** Reads an authorization of the signing account, or throws `malformed` (404) or `unauthorized`. */
export async function ownAuthorization(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  id: string,
): Promise<AuthorizationRecord> {
  const authorization = await context.store.authorization(id);
  if (!authorization || authorization.directory !== scope.directory) {
    throw notFoundProblem("authorization");
  }
  if (authorization.accountId !== request.account?.id) {
    throw new AcmeProblem("unauthorized", "the authorization belongs to another account");
  }
  return refreshAuthorization(context, authorization);
}

export function challengeView(
  scope: AcmeScope,
  authorization: AuthorizationRecord,
  challenge: ChallengeRecord,
) {
  return {
    type: challenge.type,
    url: scope.urls.challenge(authorization.id, challenge.type),
    status: challenge.status,
    token: challenge.token,
    ...(challenge.validated ? { validated: challenge.validated } : {}),
    ...(challenge.error ? { error: challenge.error } : {}),
  };
}

/** Returns an authorization as ACME clients read it (RFC 8555 section 7.1.4). */
export function authorizationView(scope: AcmeScope, authorization: AuthorizationRecord) {
  // A valid authorization lists only the challenge that validated it.
  const challenges =
    authorization.status === "valid"
      ? authorization.challenges.filter((challenge) => challenge.status === "valid")
      : authorization.challenges;
  return {
    identifier: authorization.identifier,
    status: authorization.status,
    expires: authorization.expires,
    challenges: challenges.map((challenge) => challengeView(scope, authorization, challenge)),
    ...(authorization.wildcard ? { wildcard: true } : {}),
  };
}

function authorizationResponse(scope: AcmeScope, authorization: AuthorizationRecord): AcmeResponse {
  const processing = authorization.challenges.some(
    (challenge) => challenge.status === "processing",
  );
  return {
    status: 200,
    body: authorizationView(scope, authorization),
    ...(authorization.status === "pending" && processing
      ? { retryAfter: POLL_INTERVAL_SECONDS }
      : {}),
  };
}

/**
 * Serves a POST to an authorization URL: POST-as-GET reads it, and
 * `status: "deactivated"` deactivates a pending or valid one (RFC 8555
 * section 7.5.2).
 */
export async function postAuthorization(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  id: string,
): Promise<AcmeResponse> {
  const authorization = await ownAuthorization(context, scope, request, id);
  const payload = request.payload;
  if (payload === undefined) return authorizationResponse(scope, authorization);
  if (payload.status !== "deactivated") {
    throw new AcmeProblem(
      "malformed",
      'an authorization\'s "status" can only be set to "deactivated"',
    );
  }
  const updated = await context.store.withLock(`authorizations/${id}`, async () => {
    const current = (await context.store.authorization(id)) ?? authorization;
    if (current.status !== "pending" && current.status !== "valid") {
      throw new AcmeProblem(
        "malformed",
        `the authorization is ${current.status} and cannot be deactivated`,
      );
    }
    const changed: AuthorizationRecord = { ...current, status: "deactivated" };
    await context.store.putAuthorization(changed);
    return changed;
  });
  return authorizationResponse(scope, updated);
}
