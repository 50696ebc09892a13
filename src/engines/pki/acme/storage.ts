import type { PkiStore } from "../store.ts";
import type {
  AccountRecord,
  AcmeCertificateRecord,
  AuthorizationRecord,
  EabKeyRecord,
  OrderRecord,
} from "./records.ts";

/** Record ids: 128 random bits, base64url, so they are safe as one path segment. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Returns a directory's folder name in the key index: `default`, or `role-<role>` for a role's directory. */
function directoryKey(directory: string): string {
  return directory === "" ? "default" : `role-${directory}`;
}

/**
 * Typed access to the ACME records of one mount, all through the PKI store
 * and so behind the barrier. Ids that arrive in URLs are checked against
 * the id pattern before they become storage paths.
 */
export class AcmeStore {
  readonly #store: PkiStore;

  constructor(store: PkiStore) {
    this.#store = store;
  }

  /** Runs `work` under the lock of one record, so read-modify-write sequences do not interleave. */
  withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
    return this.#store.withLock(`acme/${path}`, work);
  }

  async account(id: string): Promise<AccountRecord | undefined> {
    return this.#read<AccountRecord>("accounts", id);
  }

  async putAccount(record: AccountRecord): Promise<void> {
    await this.#store.put(`acme/accounts/${record.id}`, record);
  }

  /** Returns the id of the directory's account with this key thumbprint. */
  async accountIdByKey(directory: string, thumbprint: string): Promise<string | undefined> {
    if (!ID_PATTERN.test(thumbprint)) return undefined;
    const path = `acme/account-keys/${directoryKey(directory)}/${thumbprint}`;
    return (await this.#store.get<{ accountId: string }>(path))?.accountId;
  }

  async putAccountKey(directory: string, thumbprint: string, accountId: string): Promise<void> {
    await this.#store.put(`acme/account-keys/${directoryKey(directory)}/${thumbprint}`, {
      accountId,
    });
  }

  async deleteAccountKey(directory: string, thumbprint: string): Promise<void> {
    await this.#store.delete(`acme/account-keys/${directoryKey(directory)}/${thumbprint}`);
  }

  async listAccounts(): Promise<string[]> {
    return this.#store.list("acme/accounts");
  }

  /** Deletes an account with its key index entry, if that still names it. */
  async deleteAccount(record: AccountRecord): Promise<void> {
    if ((await this.accountIdByKey(record.directory, record.thumbprint)) === record.id) {
      await this.deleteAccountKey(record.directory, record.thumbprint);
    }
    await this.#store.delete(`acme/accounts/${record.id}`);
  }

  async order(id: string): Promise<OrderRecord | undefined> {
    return this.#read<OrderRecord>("orders", id);
  }

  /** Stores a new order and lists it under its account. */
  async createOrder(record: OrderRecord): Promise<void> {
    await this.#store.put(`acme/orders/${record.id}`, record);
    await this.#store.put(`acme/account-orders/${record.accountId}/${record.id}`, {});
  }

  /** Stores a changed order; it is already listed under its account. */
  async putOrder(record: OrderRecord): Promise<void> {
    await this.#store.put(`acme/orders/${record.id}`, record);
  }

  async accountOrderIds(accountId: string): Promise<string[]> {
    return this.#store.list(`acme/account-orders/${accountId}`);
  }

  async listOrders(): Promise<string[]> {
    return this.#store.list("acme/orders");
  }

  /** Deletes an order and its entry in the account's order list. */
  async deleteOrder(record: OrderRecord): Promise<void> {
    await this.#store.delete(`acme/account-orders/${record.accountId}/${record.id}`);
    await this.#store.delete(`acme/orders/${record.id}`);
  }

  async authorization(id: string): Promise<AuthorizationRecord | undefined> {
    return this.#read<AuthorizationRecord>("authorizations", id);
  }

  /** Stores a new authorization and lists it under its account. */
  async createAuthorization(record: AuthorizationRecord): Promise<void> {
    await this.#store.put(`acme/authorizations/${record.id}`, record);
    await this.#store.put(`acme/account-authorizations/${record.accountId}/${record.id}`, {});
  }

  /** Stores a changed authorization; it is already listed under its account. */
  async putAuthorization(record: AuthorizationRecord): Promise<void> {
    await this.#store.put(`acme/authorizations/${record.id}`, record);
  }

  async accountAuthorizationIds(accountId: string): Promise<string[]> {
    return this.#store.list(`acme/account-authorizations/${accountId}`);
  }

  async listAuthorizations(): Promise<string[]> {
    return this.#store.list("acme/authorizations");
  }

  /** Deletes an authorization, with its challenges, and its entry in the account's list. */
  async deleteAuthorization(record: AuthorizationRecord): Promise<void> {
    await this.#store.delete(`acme/account-authorizations/${record.accountId}/${record.id}`);
    await this.#store.delete(`acme/authorizations/${record.id}`);
  }

  async certificate(serialHex: string): Promise<AcmeCertificateRecord | undefined> {
    if (!/^[0-9a-f]{1,64}$/.test(serialHex)) return undefined;
    return this.#store.get<AcmeCertificateRecord>(`acme/certificates/${serialHex}`);
  }

  async putCertificate(record: AcmeCertificateRecord): Promise<void> {
    await this.#store.put(`acme/certificates/${record.serialHex}`, record);
  }

  async listCertificates(): Promise<string[]> {
    return this.#store.list("acme/certificates");
  }

  /** Deletes the ACME record of a certificate; the mount's certificate store keeps its own copy. */
  async deleteCertificate(serialHex: string): Promise<void> {
    if (/^[0-9a-f]{1,64}$/.test(serialHex))
      await this.#store.delete(`acme/certificates/${serialHex}`);
  }

  async eabKey(id: string): Promise<EabKeyRecord | undefined> {
    return this.#read<EabKeyRecord>("eab", id);
  }

  async putEabKey(record: EabKeyRecord): Promise<void> {
    await this.#store.put(`acme/eab/${record.id}`, record);
  }

  async deleteEabKey(id: string): Promise<void> {
    if (ID_PATTERN.test(id)) await this.#store.delete(`acme/eab/${id}`);
  }

  async listEabKeys(): Promise<string[]> {
    return this.#store.list("acme/eab");
  }

  async #read<T>(folder: string, id: string): Promise<T | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    return this.#store.get<T>(`acme/${folder}/${id}`);
  }
}
