import type { AuthenticatedRequest } from "./authenticate.ts";
import {
  createAuthorization,
  PENDING_LIFETIME_MS,
  refreshAuthorization,
} from "./authorizations.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { newId, POLL_INTERVAL_SECONDS } from "./context.ts";
import { authorizationTarget, identifierKey, readIdentifiers } from "./identifiers.ts";
import { checkIdentifiersAllowed, issuancePolicy } from "./policy.ts";
import { AcmeProblem, notFoundProblem, PROBLEM_PREFIX } from "./problems.ts";
import type { AuthorizationRecord, Identifier, OrderRecord } from "./records.ts";
import { parseCertificateId } from "./renewal-info.ts";
import { readRequestedValidity, sameRequestedValidity } from "./validity.ts";

/** Returns an order as ACME clients read it (RFC 8555 section 7.1.3). */
export function orderView(scope: AcmeScope, order: OrderRecord) {
  return {
    status: order.status,
    expires: order.expires,
    identifiers: order.identifiers,
    ...(order.notBefore ? { notBefore: order.notBefore } : {}),
    ...(order.notAfter ? { notAfter: order.notAfter } : {}),
    authorizations: order.authorizationIds.map((id) => scope.urls.authorization(id)),
    finalize: scope.urls.finalize(order.id),
    ...(order.certificateSerial
      ? { certificate: scope.urls.certificate(order.certificateSerial) }
      : {}),
    ...(order.error ? { error: order.error } : {}),
    ...(order.replaces ? { replaces: order.replaces } : {}),
  };
}

export function orderResponse(scope: AcmeScope, order: OrderRecord, status: number): AcmeResponse {
  return {
    status,
    body: orderView(scope, order),
    location: scope.urls.order(order.id),
    ...(order.status === "processing" ? { retryAfter: POLL_INTERVAL_SECONDS } : {}),
  };
}

/**
 * Returns the order with its status brought up to date (RFC 8555 section
 * 7.1.6): a pending order turns `ready` once every authorization is valid
 * and `invalid` once one fails or the order expires. Stores the change.
 */
export async function refreshOrder(context: AcmeContext, order: OrderRecord): Promise<OrderRecord> {
  if (order.status !== "pending" && order.status !== "ready") return order;
  const now = context.clock().getTime();
  let next: Partial<OrderRecord> | undefined;
  if (Date.parse(order.expires) <= now) {
    next = {
      status: "invalid",
      error: { type: `${PROBLEM_PREFIX}malformed`, detail: "the order expired" },
    };
  } else if (order.status === "pending") {
    const authorizations: AuthorizationRecord[] = [];
    for (const id of order.authorizationIds) {
      const stored = await context.store.authorization(id);
      if (stored) authorizations.push(await refreshAuthorization(context, stored));
    }
    const failed = authorizations.find(
      (authorization) => authorization.status !== "pending" && authorization.status !== "valid",
    );
    if (failed || authorizations.length !== order.authorizationIds.length) {
      const challengeError = failed?.challenges.find((challenge) => challenge.error)?.error;
      next = {
        status: "invalid",
        error: challengeError ?? {
          type: `${PROBLEM_PREFIX}unauthorized`,
          detail: `an authorization of the order is ${failed?.status ?? "missing"}`,
        },
      };
    } else if (authorizations.every((authorization) => authorization.status === "valid")) {
      next = { status: "ready" };
    }
  }
  if (!next) return order;
  const changes = next;
  return context.store.withLock(`orders/${order.id}`, async () => {
    const current = (await context.store.order(order.id)) ?? order;
    if (current.status !== order.status) return current;
    const changed: OrderRecord = { ...current, ...changes };
    await context.store.putOrder(changed);
    return changed;
  });
}

/** Reads an order of the signing account, or throws `malformed` (404) or `unauthorized`. */
export async function ownOrder(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  id: string,
): Promise<OrderRecord> {
  const order = await context.store.order(id);
  if (!order || order.directory !== scope.directory) throw notFoundProblem("order");
  if (order.accountId !== request.account?.id) {
    throw new AcmeProblem("unauthorized", "the order belongs to another account");
  }
  return refreshOrder(context, order);
}

function sameIdentifiers(a: Identifier[], b: Identifier[]): boolean {
  const left = a.map(identifierKey).sort();
  const right = b.map(identifierKey).sort();
  return left.length === right.length && left.every((key, index) => key === right[index]);
}

/**
 * Serves newOrder (RFC 8555 section 7.4). The identifiers are checked
 * against the directory's role first, so a name the role rejects creates
 * nothing. A requested `notBefore` and `notAfter` must lie within the
 * role's maximum TTL. A pending or ready order of the account for the same
 * identifiers and validity is returned instead of a new one, and pending or valid
 * authorizations of the account are reused.
 */
export async function newOrder(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
): Promise<AcmeResponse> {
  const account = request.account!;
  const payload = request.payload;
  if (payload === undefined) throw new AcmeProblem("malformed", "newOrder needs a JSON payload");
  const identifiers = readIdentifiers(payload.identifiers);
  let replaces: string | undefined;
  if (payload.replaces !== undefined) {
    if (typeof payload.replaces !== "string" || !parseCertificateId(payload.replaces)) {
      throw new AcmeProblem("malformed", '"replaces" is not an ARI certificate identifier');
    }
    replaces = payload.replaces;
  }
  const policy = await issuancePolicy(context.pki, scope.config, scope.directory);
  checkIdentifiersAllowed(policy, identifiers);
  const requested = readRequestedValidity(
    payload,
    policy,
    context.pki.context.mountTtls(),
    context.clock(),
  );

  const { store } = context;
  return store.withLock(`account-orders/${account.id}`, async () => {
    for (const id of await store.accountOrderIds(account.id)) {
      const stored = await store.order(id);
      if (!stored || (stored.status !== "pending" && stored.status !== "ready")) continue;
      const existing = await refreshOrder(context, stored);
      const open = existing.status === "pending" || existing.status === "ready";
      const same =
        sameIdentifiers(existing.identifiers, identifiers) &&
        sameRequestedValidity(existing, requested);
      if (open && same) {
        return orderResponse(scope, existing, 201);
      }
    }

    const reusable = await reusableAuthorizations(context, scope, account.id);
    const now = context.clock();
    const authorizationIds: string[] = [];
    let allValid = true;
    for (const identifier of identifiers) {
      const target = authorizationTarget(identifier);
      const key = `${identifierKey(target.identifier)}:${target.wildcard}`;
      let authorization = reusable.get(key);
      if (!authorization) {
        authorization = createAuthorization(
          context,
          scope,
          account.id,
          target.identifier,
          target.wildcard,
        );
        await store.createAuthorization(authorization);
        reusable.set(key, authorization);
      }
      if (authorization.status !== "valid") allValid = false;
      if (!authorizationIds.includes(authorization.id)) authorizationIds.push(authorization.id);
    }
    const order: OrderRecord = {
      id: newId(),
      accountId: account.id,
      directory: scope.directory,
      status: allValid ? "ready" : "pending",
      expires: new Date(now.getTime() + PENDING_LIFETIME_MS).toISOString(),
      identifiers,
      authorizationIds,
      createdAt: now.toISOString(),
      ...requested,
      ...(replaces ? { replaces } : {}),
    };
    await store.createOrder(order);
    context.logger?.info(
      {
        mount: context.pki.mount,
        account: account.id,
        order: order.id,
        identifiers: identifiers.length,
      },
      "created ACME order",
    );
    return orderResponse(scope, order, 201);
  });
}

/** Returns the account's live authorizations of this directory, keyed by identifier and wildcard flag; valid ones win. */
async function reusableAuthorizations(
  context: AcmeContext,
  scope: AcmeScope,
  accountId: string,
): Promise<Map<string, AuthorizationRecord>> {
  const byKey = new Map<string, AuthorizationRecord>();
  for (const id of await context.store.accountAuthorizationIds(accountId)) {
    const stored = await context.store.authorization(id);
    if (!stored || stored.directory !== scope.directory) continue;
    const authorization = await refreshAuthorization(context, stored);
    const key = `${identifierKey(authorization.identifier)}:${authorization.wildcard}`;
    if (authorization.status === "valid") byKey.set(key, authorization);
    else if (authorization.status === "pending" && byKey.get(key)?.status !== "valid") {
      byKey.set(key, authorization);
    }
  }
  return byKey;
}

/** Serves a POST-as-GET to an order URL. */
export async function readOrder(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  id: string,
): Promise<AcmeResponse> {
  if (request.payload !== undefined) {
    throw new AcmeProblem("malformed", "an order is read with POST-as-GET (an empty payload)");
  }
  const order = await ownOrder(context, scope, request, id);
  return { ...orderResponse(scope, order, 200) };
}
