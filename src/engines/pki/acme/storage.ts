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

  async certificate(serialHex: string): Promise<AcmeCertificateRecord | undefined> {
    if (!/^[0-9a-f]{1,64}$/.test(serialHex)) return undefined;
    return this.#store.get<AcmeCertificateRecord>(`acme/certificates/${serialHex}`);
  }

  async putCertificate(record: AcmeCertificateRecord): Promise<void> {
    await this.#store.put(`acme/certificates/${record.serialHex}`, record);
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
