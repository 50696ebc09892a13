import type { PkiLogger, PkiService } from "../service.ts";
import { changeKey, listOrders, newAccount, updateAccount } from "./accounts.ts";
import { authenticate, type KeyRule } from "./authenticate.ts";
import { postAuthorization } from "./authorizations.ts";
import { postChallenge } from "./challenges.ts";
import { type AcmeConfig, readAcmeConfig, writeAcmeConfig } from "./config.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { directory } from "./directory.ts";
import { createEabKey, type EabKeyView, listEabKeys } from "./eab.ts";
import { downloadCertificate, finalizeOrder } from "./finalize.ts";
import { NonceStore } from "./nonces.ts";
import { newOrder, readOrder } from "./orders.ts";
import { renewalInfo } from "./renewal-info.ts";
import { revokeCertificate } from "./revoke.ts";
import { AcmeStore } from "./storage.ts";
import { AcmeUrls } from "./urls.ts";
import { type ChallengeValidator, NetworkValidator } from "./validation/validator.ts";

/** The resources a signed ACME POST can address, with the key rule each one needs. */
export type AcmeOperation =
  | { kind: "newAccount" }
  | { kind: "account"; id: string }
  | { kind: "accountOrders"; id: string }
  | { kind: "keyChange" }
  | { kind: "newOrder" }
  | { kind: "order"; id: string }
  | { kind: "finalize"; id: string }
  | { kind: "authorization"; id: string }
  | { kind: "challenge"; authorizationId: string; type: string }
  | { kind: "certificate"; serialHex: string }
  | { kind: "revokeCert" };

function keyRuleOf(operation: AcmeOperation): KeyRule {
  if (operation.kind === "newAccount") return "jwk";
  if (operation.kind === "revokeCert") return "either";
  return "kid";
}

export interface AcmeServiceOptions {
  validator?: ChallengeValidator;
  nonces?: NonceStore;
}

/**
 * The ACME server (RFC 8555) of one PKI mount. The HTTP routes resolve the
 * directory and request URL into an `AcmeScope` and call it; it does not
 * depend on HTTP.
 */
export class AcmeService {
  readonly #context: AcmeContext;

  constructor(pki: PkiService, options: AcmeServiceOptions = {}) {
    this.#context = {
      pki,
      store: new AcmeStore(pki.context.store),
      nonces: options.nonces ?? new NonceStore(),
      validator: options.validator ?? new NetworkValidator(),
      clock: pki.context.clock,
      logger: pki.logger as PkiLogger | undefined,
      tasks: new Set(),
    };
  }

  /** Issues a nonce for a Replay-Nonce header. */
  issueNonce(): string {
    return this.#context.nonces.issue();
  }

  async config(): Promise<AcmeConfig> {
    return readAcmeConfig(this.#context.pki.context.store);
  }

  async writeConfig(changes: Partial<AcmeConfig>): Promise<AcmeConfig> {
    return writeAcmeConfig(this.#context.pki.context.store, changes);
  }

  /** Builds the scope of a request to `directory` (a role name, or `""`) at `requestUrl`. */
  async scope(directory: string, mountBase: string, requestPath: string): Promise<AcmeScope> {
    const config = await this.config();
    const base = config.base_url !== "" ? config.base_url : mountBase;
    return {
      directory,
      urls: new AcmeUrls(base, directory),
      requestUrl: base + requestPath,
      config,
    };
  }

  async directory(scope: AcmeScope): Promise<AcmeResponse> {
    return directory(this.#context, scope);
  }

  async renewalInfo(scope: AcmeScope, certificateId: string): Promise<AcmeResponse> {
    return renewalInfo(this.#context, scope, certificateId);
  }

  /** Checks a signed POST's JWS and serves it. */
  async post(scope: AcmeScope, operation: AcmeOperation, body: unknown): Promise<AcmeResponse> {
    const context = this.#context;
    const request = await authenticate(context, scope, body, keyRuleOf(operation));
    switch (operation.kind) {
      case "newAccount":
        return newAccount(context, scope, request);
      case "account":
        return updateAccount(context, scope, request, operation.id);
      case "accountOrders":
        return listOrders(context, scope, request, operation.id);
      case "keyChange":
        return changeKey(context, scope, request);
      case "newOrder":
        return newOrder(context, scope, request);
      case "order":
        return readOrder(context, scope, request, operation.id);
      case "finalize":
        return finalizeOrder(context, scope, request, operation.id);
      case "authorization":
        return postAuthorization(context, scope, request, operation.id);
      case "challenge":
        return postChallenge(context, scope, request, operation.authorizationId, operation.type);
      case "certificate":
        return downloadCertificate(context, scope, request, operation.serialHex);
      case "revokeCert":
        return revokeCertificate(context, scope, request);
    }
  }

  async createEabKey(directory: string): Promise<EabKeyView & { key: string }> {
    return createEabKey(this.#context.store, directory, this.#context.clock());
  }

  async listEabKeys(): Promise<EabKeyView[]> {
    return listEabKeys(this.#context.store);
  }

  /** Deletes an EAB key; returns false when it does not exist. */
  async deleteEabKey(id: string): Promise<boolean> {
    const exists = (await this.#context.store.eabKey(id)) !== undefined;
    if (exists) await this.#context.store.deleteEabKey(id);
    return exists;
  }

  /** The store of ACME records, for the management API. */
  get store(): AcmeStore {
    return this.#context.store;
  }

  /** Waits for the challenge validations running now to finish. */
  async settled(): Promise<void> {
    while (this.#context.tasks.size > 0) await Promise.allSettled([...this.#context.tasks]);
  }
}
