import type { AuthenticatedRequest } from "./authenticate.ts";
import { challengeView, ownAuthorization, VALID_LIFETIME_MS } from "./authorizations.ts";
import type { AcmeConfig } from "./config.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { POLL_INTERVAL_SECONDS } from "./context.ts";
import { AcmeProblem, notFoundProblem, PROBLEM_PREFIX, type ProblemDocument } from "./problems.ts";
import { type AuthorizationRecord, CHALLENGE_TYPES, type ChallengeType } from "./records.ts";

/** Returns the key authorization of a challenge: `<token>.<account key thumbprint>` (RFC 8555 section 8.1). */
export function keyAuthorization(token: string, thumbprint: string): string {
  return `${token}.${thumbprint}`;
}

/**
 * Serves a POST to a challenge URL (RFC 8555 section 7.5.1). An empty
 * object starts validation of a pending challenge of a pending
 * authorization: the challenge turns `processing` at once and the
 * validation runs after the response; POST-as-GET and a POST to a
 * challenge already started return the challenge as it is.
 */
export async function postChallenge(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  authorizationId: string,
  type: string,
): Promise<AcmeResponse> {
  if (!(CHALLENGE_TYPES as readonly string[]).includes(type)) throw notFoundProblem("challenge");
  const challengeType = type as ChallengeType;
  const authorization = await ownAuthorization(context, scope, request, authorizationId);
  if (!authorization.challenges.some((challenge) => challenge.type === challengeType)) {
    throw notFoundProblem("challenge");
  }

  let current = authorization;
  let started = false;
  if (request.payload !== undefined) {
    current = await context.store.withLock(`authorizations/${authorizationId}`, async () => {
      const stored = (await context.store.authorization(authorizationId)) ?? authorization;
      const challenge = stored.challenges.find((candidate) => candidate.type === challengeType)!;
      if (stored.status !== "pending" || challenge.status !== "pending") return stored;
      if (stored.challenges.some((candidate) => candidate.status === "processing")) {
        throw new AcmeProblem(
          "malformed",
          "another challenge of this authorization is being validated",
        );
      }
      const changed: AuthorizationRecord = {
        ...stored,
        challenges: stored.challenges.map((candidate) =>
          candidate.type === challengeType ? { ...candidate, status: "processing" } : candidate,
        ),
      };
      await context.store.putAuthorization(changed);
      started = true;
      return changed;
    });
  }
  if (started) {
    startValidation(context, scope.config, current, challengeType, request.thumbprint);
  }
  const challenge = current.challenges.find((candidate) => candidate.type === challengeType)!;
  return {
    status: 200,
    body: challengeView(scope, current, challenge),
    links: [`<${scope.urls.authorization(current.id)}>;rel="up"`],
    ...(challenge.status === "processing" ? { retryAfter: POLL_INTERVAL_SECONDS } : {}),
  };
}

/** Runs a challenge's validation in the background and stores its outcome; `context.tasks` tracks it. */
function startValidation(
  context: AcmeContext,
  config: AcmeConfig,
  authorization: AuthorizationRecord,
  type: ChallengeType,
  thumbprint: string,
): void {
  const challenge = authorization.challenges.find((candidate) => candidate.type === type)!;
  const task = (async () => {
    let problem: ProblemDocument | undefined;
    try {
      problem = await context.validator.validate(
        {
          type,
          identifier: authorization.identifier,
          token: challenge.token,
          keyAuthorization: keyAuthorization(challenge.token, thumbprint),
        },
        config,
      );
    } catch (error) {
      context.logger?.error(
        { mount: context.pki.mount, authorization: authorization.id, type, err: error },
        "ACME challenge validation failed unexpectedly",
      );
      problem = {
        type: `${PROBLEM_PREFIX}serverInternal`,
        detail: "validation failed unexpectedly",
      };
    }
    await finishValidation(context, authorization.id, type, problem);
  })().catch((error: unknown) => {
    context.logger?.error(
      { mount: context.pki.mount, authorization: authorization.id, type, err: error },
      "storing an ACME validation result failed",
    );
  });
  context.tasks.add(task);
  void task.finally(() => context.tasks.delete(task));
}

/** Stores a validation outcome: the challenge and its authorization both turn valid, or both invalid. */
async function finishValidation(
  context: AcmeContext,
  authorizationId: string,
  type: ChallengeType,
  problem: ProblemDocument | undefined,
): Promise<void> {
  const { store } = context;
  await store.withLock(`authorizations/${authorizationId}`, async () => {
    const current = await store.authorization(authorizationId);
    if (!current) return;
    const challenge = current.challenges.find((candidate) => candidate.type === type);
    if (challenge?.status !== "processing") return;
    const now = context.clock();
    const live = current.status === "pending";
    const changed: AuthorizationRecord = {
      ...current,
      challenges: current.challenges.map((candidate) =>
        candidate.type !== type
          ? candidate
          : problem === undefined
            ? { ...candidate, status: "valid", validated: now.toISOString() }
            : {
                ...candidate,
                status: "invalid",
                error: { ...problem, identifier: current.identifier },
              },
      ),
      ...(live && problem === undefined
        ? { status: "valid", expires: new Date(now.getTime() + VALID_LIFETIME_MS).toISOString() }
        : {}),
      ...(live && problem !== undefined ? { status: "invalid" } : {}),
    };
    await store.putAuthorization(changed);
    context.logger?.info(
      {
        mount: context.pki.mount,
        authorization: authorizationId,
        identifier: `${current.identifier.type}:${current.identifier.value}`,
        type,
        status: problem === undefined ? "valid" : "invalid",
        problem: problem?.type,
      },
      "validated ACME challenge",
    );
  });
}
