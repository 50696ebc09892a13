import type { PkiStore } from "../store.ts";
import type { AccountRecord, OrderRecord } from "./records.ts";
import { AcmeStore } from "./storage.ts";

/** Vault's default `acme_account_safety_buffer`: 30 days, in seconds. */
export const DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS = 30 * 24 * 3600;

export interface AcmeTidyOptions {
  now: Date;
  /** How long orders, authorizations and certificate records are kept after they end, in seconds. */
  safetyBufferSeconds: number;
  /** How long a deactivated or revoked account is kept after its status changed, in seconds. */
  accountSafetyBufferSeconds: number;
}

/** The number of ACME records one tidy run deleted, by kind. */
export interface AcmeTidyCounts {
  accountsDeleted: number;
  ordersDeleted: number;
  authorizationsDeleted: number;
  certificatesDeleted: number;
}

/** Returns when an order stops mattering: its certificate's notAfter once issued, else its own expiry. */
async function orderEnd(store: AcmeStore, order: OrderRecord): Promise<number> {
  const expires = Date.parse(order.expires);
  if (order.certificateSerial === undefined) return expires;
  const certificate = await store.certificate(order.certificateSerial);
  return certificate ? Math.max(expires, Date.parse(certificate.notAfter)) : expires;
}

/** Returns when an account was deactivated or revoked; records from before that time was kept use the creation time. */
function statusChangeOf(account: AccountRecord): number {
  return Date.parse(account.statusChangedAt ?? account.createdAt);
}

/**
 * Deletes ACME records that no client can use any more:
 *
 * - deactivated and revoked accounts, `accountSafetyBufferSeconds` after
 *   their status changed, with all their orders and authorizations;
 * - orders, `safetyBufferSeconds` after their certificate's notAfter, or
 *   after the order's expiry when no certificate was issued;
 * - authorizations and their challenges, `safetyBufferSeconds` after they
 *   expire, unless an order that is kept still lists them;
 * - ACME certificate records, `safetyBufferSeconds` after their notAfter,
 *   unless a kept order names them. The mount's certificate store keeps
 *   its own copy, which tidy_cert_store governs.
 *
 * Valid accounts stay, however long they are idle.
 */
export async function tidyAcmeRecords(
  pkiStore: PkiStore,
  options: AcmeTidyOptions,
): Promise<AcmeTidyCounts> {
  const store = new AcmeStore(pkiStore);
  const now = options.now.getTime();
  const cutoff = now - options.safetyBufferSeconds * 1000;
  const accountCutoff = now - options.accountSafetyBufferSeconds * 1000;
  const counts: AcmeTidyCounts = {
    accountsDeleted: 0,
    ordersDeleted: 0,
    authorizationsDeleted: 0,
    certificatesDeleted: 0,
  };

  const deletedAccounts = new Set<string>();
  for (const id of await store.listAccounts()) {
    await store.withLock(`accounts/${id}`, async () => {
      const account = await store.account(id);
      if (!account || account.status === "valid" || statusChangeOf(account) >= accountCutoff) {
        return;
      }
      await store.deleteAccount(account);
      deletedAccounts.add(account.id);
      counts.accountsDeleted++;
    });
  }

  const keptAuthorizations = new Set<string>();
  const keptCertificates = new Set<string>();
  for (const id of await store.listOrders()) {
    await store.withLock(`orders/${id}`, async () => {
      const order = await store.order(id);
      if (!order) return;
      if (deletedAccounts.has(order.accountId) || (await orderEnd(store, order)) < cutoff) {
        await store.deleteOrder(order);
        counts.ordersDeleted++;
        return;
      }
      for (const authorizationId of order.authorizationIds) keptAuthorizations.add(authorizationId);
      if (order.certificateSerial) keptCertificates.add(order.certificateSerial);
    });
  }

  for (const id of await store.listAuthorizations()) {
    if (keptAuthorizations.has(id)) continue;
    await store.withLock(`authorizations/${id}`, async () => {
      const authorization = await store.authorization(id);
      if (!authorization) return;
      const ended = Date.parse(authorization.expires) < cutoff;
      if (deletedAccounts.has(authorization.accountId) || ended) {
        await store.deleteAuthorization(authorization);
        counts.authorizationsDeleted++;
      }
    });
  }

  for (const serialHex of await store.listCertificates()) {
    if (keptCertificates.has(serialHex)) continue;
    const certificate = await store.certificate(serialHex);
    if (certificate && Date.parse(certificate.notAfter) < cutoff) {
      await store.deleteCertificate(serialHex);
      counts.certificatesDeleted++;
    }
  }
  return counts;
}
