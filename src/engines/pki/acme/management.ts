import { colonSerial } from "../key-pairs.ts";
import { directoryKeyOf } from "./config.ts";
import type { AccountRecord, AuthorizationRecord, OrderRecord } from "./records.ts";
import type { AcmeStore } from "./storage.ts";

/**
 * Read-only views of ACME records for the token-authenticated management
 * API, with Vault-style snake_case fields. They carry public data only:
 * account public keys are left out as well, and challenge tokens are kept
 * because the validation already published them.
 */

/** An account as the management API returns it. */
export function accountSummary(account: AccountRecord) {
  return {
    id: account.id,
    directory: directoryKeyOf(account.directory),
    status: account.status,
    contact: account.contact,
    created: account.createdAt,
    ...(account.statusChangedAt ? { status_changed: account.statusChangedAt } : {}),
    eab_key_id: account.eabKeyId,
    key_thumbprint: account.thumbprint,
  };
}

/** An authorization with its challenges, as the management API returns it. */
export function authorizationSummary(authorization: AuthorizationRecord) {
  return {
    id: authorization.id,
    account_id: authorization.accountId,
    directory: directoryKeyOf(authorization.directory),
    identifier: authorization.identifier,
    wildcard: authorization.wildcard,
    status: authorization.status,
    created: authorization.createdAt,
    expires: authorization.expires,
    challenges: authorization.challenges.map(({ type, token, status, validated, error }) => ({
      type,
      token,
      status,
      ...(validated ? { validated } : {}),
      ...(error ? { error } : {}),
    })),
  };
}

/** An order without its authorizations, as lists return it. */
export function orderSummary(order: OrderRecord) {
  return {
    id: order.id,
    account_id: order.accountId,
    directory: directoryKeyOf(order.directory),
    status: order.status,
    identifiers: order.identifiers,
    created: order.createdAt,
    expires: order.expires,
    ...(order.notBefore ? { not_before: order.notBefore } : {}),
    ...(order.notAfter ? { not_after: order.notAfter } : {}),
    authorization_ids: order.authorizationIds,
    ...(order.certificateSerial ? { serial_number: colonSerial(order.certificateSerial) } : {}),
    ...(order.error ? { error: order.error } : {}),
    ...(order.replaces ? { replaces: order.replaces } : {}),
  };
}

/** Returns an order with its authorizations and, once issued, the certificate's serial and validity. */
export async function orderDetails(store: AcmeStore, order: OrderRecord) {
  const authorizations = [];
  for (const id of order.authorizationIds) {
    const authorization = await store.authorization(id);
    if (authorization) authorizations.push(authorizationSummary(authorization));
  }
  const certificate = order.certificateSerial
    ? await store.certificate(order.certificateSerial)
    : undefined;
  return {
    ...orderSummary(order),
    authorizations,
    ...(certificate
      ? {
          certificate: {
            serial_number: colonSerial(certificate.serialHex),
            issuer_id: certificate.issuerId,
            not_before: certificate.notBefore,
            not_after: certificate.notAfter,
          },
        }
      : {}),
  };
}

/** Returns the orders of an account, in the order the store lists them. */
export async function accountOrders(store: AcmeStore, accountId: string): Promise<OrderRecord[]> {
  const orders: OrderRecord[] = [];
  for (const id of await store.accountOrderIds(accountId)) {
    const order = await store.order(id);
    if (order) orders.push(order);
  }
  return orders;
}

/** Returns the authorizations of an account, in the order the store lists them. */
export async function accountAuthorizations(
  store: AcmeStore,
  accountId: string,
): Promise<AuthorizationRecord[]> {
  const authorizations: AuthorizationRecord[] = [];
  for (const id of await store.accountAuthorizationIds(accountId)) {
    const authorization = await store.authorization(id);
    if (authorization) authorizations.push(authorization);
  }
  return authorizations;
}
