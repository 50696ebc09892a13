import type { JWK } from "jose";
import type { AuthenticatedRequest } from "./authenticate.ts";
import { eabPolicyOf } from "./config.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { newId } from "./context.ts";
import { verifyExternalAccountBinding } from "./eab.ts";
import {
  checkAccountJwk,
  jwkThumbprint,
  readFlattenedJws,
  readProtectedHeader,
  verifyJws,
} from "./jws.ts";
import { AcmeProblem, notFoundProblem } from "./problems.ts";
import type { AccountRecord } from "./records.ts";

/** Contacts one account may list at most. */
const MAX_CONTACTS = 10;

/** A simple email check: one `@`, something on each side, no spaces or separators. */
const EMAIL = /^[^\s@,;<>]+@[^\s@,;<>]+\.[^\s@,;<>]+$/;

/** Returns an account as ACME clients read it (RFC 8555 section 7.1.2). */
export function accountView(scope: AcmeScope, account: AccountRecord) {
  return {
    status: account.status,
    contact: account.contact,
    termsOfServiceAgreed: account.termsOfServiceAgreed,
    orders: scope.urls.accountOrders(account.id),
    createdAt: account.createdAt,
  };
}

function accountResponse(scope: AcmeScope, account: AccountRecord, status: number): AcmeResponse {
  return {
    status,
    body: accountView(scope, account),
    location: scope.urls.account(account.id),
  };
}

/** Checks a `contact` list: `mailto:` URLs with one plausible email address each. */
function readContacts(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    throw new AcmeProblem("malformed", '"contact" must be an array of strings');
  }
  if (value.length > MAX_CONTACTS) {
    throw new AcmeProblem("invalidContact", `an account may list at most ${MAX_CONTACTS} contacts`);
  }
  for (const contact of value as string[]) {
    if (!contact.startsWith("mailto:")) {
      throw new AcmeProblem("unsupportedContact", `contact "${contact}" is not a mailto: URL`);
    }
    const address = contact.slice("mailto:".length);
    if (!EMAIL.test(address) || address.includes("?")) {
      throw new AcmeProblem("invalidContact", `contact "${contact}" is not a valid email address`);
    }
  }
  return value as string[];
}

/**
 * Serves newAccount (RFC 8555 section 7.3): returns the existing account
 * of the request's key (200), or creates one (201), checking the contacts
 * and, as the directory's EAB policy requires, the external account binding.
 */
export async function newAccount(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
): Promise<AcmeResponse> {
  const payload = request.payload;
  if (payload === undefined) throw new AcmeProblem("malformed", "newAccount needs a JSON payload");
  const { store } = context;

  return store.withLock(`account-keys/${request.thumbprint}`, async () => {
    const existingId = await store.accountIdByKey(scope.directory, request.thumbprint);
    const existing = existingId === undefined ? undefined : await store.account(existingId);
    if (existing) {
      if (existing.status !== "valid") {
        throw new AcmeProblem("unauthorized", `the account of this key is ${existing.status}`);
      }
      return accountResponse(scope, existing, 200);
    }
    if (payload.onlyReturnExisting === true) {
      throw new AcmeProblem("accountDoesNotExist", "no account of this directory has this key");
    }
    const contact = readContacts(payload.contact);
    if (
      payload.termsOfServiceAgreed !== undefined &&
      typeof payload.termsOfServiceAgreed !== "boolean"
    ) {
      throw new AcmeProblem("malformed", '"termsOfServiceAgreed" must be a boolean');
    }

    const binding = payload.externalAccountBinding;
    if (binding === undefined && eabPolicyOf(scope.config, scope.directory) !== "not-required") {
      throw new AcmeProblem(
        "externalAccountRequired",
        "this directory requires external account binding; create an EAB key with the API and pass it to the client",
      );
    }
    const eabKey =
      binding === undefined
        ? undefined
        : await verifyExternalAccountBinding(context, scope, binding, request.jwk);

    const account: AccountRecord = {
      id: newId(),
      directory: scope.directory,
      status: "valid",
      contact,
      termsOfServiceAgreed: payload.termsOfServiceAgreed === true,
      jwk: publicJwk(request.jwk),
      thumbprint: request.thumbprint,
      createdAt: context.clock().toISOString(),
      ...(eabKey ? { eabKeyId: eabKey.id } : {}),
    };
    if (eabKey) {
      // The key is checked again under its lock, so two requests cannot both bind it.
      await store.withLock(`eab/${eabKey.id}`, async () => {
        const current = await store.eabKey(eabKey.id);
        if (!current || current.usedBy !== undefined) {
          throw new AcmeProblem(
            "unauthorized",
            "the EAB key has already bound an account; create a new one",
          );
        }
        await store.putEabKey({ ...current, usedBy: account.id });
      });
    }
    await store.putAccount(account);
    await store.putAccountKey(scope.directory, account.thumbprint, account.id);
    context.logger?.info(
      { mount: context.pki.mount, account: account.id, directory: scope.directory },
      "created ACME account",
    );
    return accountResponse(scope, account, 201);
  });
}

/** Keeps only the public members of a JWK, so stored account keys carry nothing else. */
function publicJwk(jwk: JWK): JWK {
  const { kty, crv, x, y, n, e } = jwk;
  const result: JWK = { kty };
  for (const [name, value] of Object.entries({ crv, x, y, n, e })) {
    if (value !== undefined) (result as Record<string, unknown>)[name] = value;
  }
  return result;
}

/** Checks that the account in the URL is the one that signed the request. */
function requireOwnAccount(request: AuthenticatedRequest, accountId: string): AccountRecord {
  const account = request.account;
  if (!account || account.id !== accountId) {
    throw new AcmeProblem(
      "unauthorized",
      "the request is signed by another account than the URL names",
    );
  }
  return account;
}

/**
 * Serves a POST to an account URL (RFC 8555 sections 7.3.2 and 7.3.6):
 * POST-as-GET reads it, `contact` replaces the contacts, and
 * `status: "deactivated"` deactivates it for good.
 */
export async function updateAccount(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  accountId: string,
): Promise<AcmeResponse> {
  const signer = requireOwnAccount(request, accountId);
  const payload = request.payload;
  if (payload === undefined) return accountResponse(scope, signer, 200);
  if (payload.status !== undefined && payload.status !== "deactivated") {
    throw new AcmeProblem("malformed", 'an account\'s "status" can only be set to "deactivated"');
  }
  const contact = payload.contact === undefined ? undefined : readContacts(payload.contact);
  const { store } = context;
  const updated = await store.withLock(`accounts/${accountId}`, async () => {
    const account = await store.account(accountId);
    if (!account) throw notFoundProblem("account");
    const changed: AccountRecord = {
      ...account,
      ...(contact ? { contact } : {}),
      ...(payload.status === "deactivated" && account.status !== "deactivated"
        ? { status: "deactivated" as const, statusChangedAt: context.clock().toISOString() }
        : {}),
    };
    await store.putAccount(changed);
    return changed;
  });
  if (updated.status === "deactivated") {
    context.logger?.info(
      { mount: context.pki.mount, account: accountId },
      "deactivated ACME account",
    );
  }
  return accountResponse(scope, updated, 200);
}

/**
 * Serves keyChange (RFC 8555 section 7.3.5): the outer JWS is signed by
 * the account's key, the inner one by the new key, over the account URL
 * and the old key. A new key that belongs to another account gets 409
 * with that account's URL in Location.
 */
export async function changeKey(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
): Promise<AcmeResponse> {
  const account = request.account!;
  if (request.payload === undefined)
    throw new AcmeProblem("malformed", "keyChange needs a JWS payload");
  const inner = readFlattenedJws(request.payload);
  const header = readProtectedHeader(inner);
  if (header.jwk === undefined || header.kid !== undefined) {
    throw new AcmeProblem("malformed", 'the inner keyChange JWS must carry the new key as "jwk"');
  }
  if (header.nonce !== undefined) {
    throw new AcmeProblem("malformed", 'the inner keyChange JWS must not have a "nonce"');
  }
  if (header.url !== request.header.url) {
    throw new AcmeProblem("malformed", 'the inner keyChange JWS must have the outer JWS\'s "url"');
  }
  const newJwk = checkAccountJwk(header.jwk);
  let inside: { account?: unknown; oldKey?: unknown };
  try {
    inside = JSON.parse(Buffer.from(await verifyJws(inner, header.alg, newJwk)).toString("utf8"));
  } catch (error) {
    if (error instanceof AcmeProblem) throw error;
    throw new AcmeProblem("malformed", "the inner keyChange payload is not JSON");
  }
  if (inside === null || typeof inside !== "object") {
    throw new AcmeProblem("malformed", "the inner keyChange payload is not a JSON object");
  }
  if (inside.account !== scope.urls.account(account.id)) {
    throw new AcmeProblem(
      "unauthorized",
      'the inner keyChange "account" is not the signing account',
    );
  }
  if (
    inside.oldKey === null ||
    typeof inside.oldKey !== "object" ||
    (await jwkThumbprint(inside.oldKey as JWK)) !== account.thumbprint
  ) {
    throw new AcmeProblem("unauthorized", 'the inner keyChange "oldKey" is not the account\'s key');
  }

  const newThumbprint = await jwkThumbprint(newJwk);
  const { store } = context;
  const updated = await store.withLock(`account-keys/${newThumbprint}`, async () => {
    const holder = await store.accountIdByKey(scope.directory, newThumbprint);
    if (holder !== undefined) {
      throw new AcmeProblem("malformed", "the new key already belongs to an account", {
        status: 409,
        location: scope.urls.account(holder),
      });
    }
    return store.withLock(`accounts/${account.id}`, async () => {
      const current = await store.account(account.id);
      if (!current || current.thumbprint !== account.thumbprint) {
        throw new AcmeProblem("unauthorized", "the account key changed during the request; retry");
      }
      const changed = { ...current, jwk: publicJwk(newJwk), thumbprint: newThumbprint };
      await store.putAccountKey(scope.directory, newThumbprint, account.id);
      await store.putAccount(changed);
      await store.deleteAccountKey(scope.directory, account.thumbprint);
      return changed;
    });
  });
  context.logger?.info(
    { mount: context.pki.mount, account: account.id },
    "changed ACME account key",
  );
  return accountResponse(scope, updated, 200);
}

/** Serves an account's orders list (RFC 8555 section 7.1.2.1). */
export async function listOrders(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  accountId: string,
): Promise<AcmeResponse> {
  requireOwnAccount(request, accountId);
  const ids = await context.store.accountOrderIds(accountId);
  return { status: 200, body: { orders: ids.map((id) => scope.urls.order(id)) } };
}
