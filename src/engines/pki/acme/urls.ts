import type { ChallengeType } from "./records.ts";

/** Returns a directory's path below the mount: `/acme` for the default directory, `/roles/<role>/acme` for a role's. */
export function directoryPath(directory: string): string {
  return directory === "" ? "/acme" : `/roles/${directory}/acme`;
}

/**
 * The absolute URLs of one ACME directory's resources. ACME clients sign
 * these URLs (the JWS `url` header), so they are built the same way for
 * every response and every check: the mount's base URL, then the
 * directory's path, then the resource.
 */
export class AcmeUrls {
  /** The directory's base, such as `https://keyward.example:8200/v1/pki/roles/web/acme`. */
  readonly base: string;

  constructor(mountBase: string, directory: string) {
    this.base = mountBase + directoryPath(directory);
  }

  get directory(): string {
    return `${this.base}/directory`;
  }
  get newNonce(): string {
    return `${this.base}/new-nonce`;
  }
  get newAccount(): string {
    return `${this.base}/new-account`;
  }
  get newOrder(): string {
    return `${this.base}/new-order`;
  }
  get revokeCert(): string {
    return `${this.base}/revoke-cert`;
  }
  get keyChange(): string {
    return `${this.base}/key-change`;
  }
  get renewalInfo(): string {
    return `${this.base}/renewal-info`;
  }
  account(id: string): string {
    return `${this.base}/account/${id}`;
  }
  accountOrders(id: string): string {
    return `${this.base}/account/${id}/orders`;
  }
  order(id: string): string {
    return `${this.base}/order/${id}`;
  }
  finalize(id: string): string {
    return `${this.base}/order/${id}/finalize`;
  }
  authorization(id: string): string {
    return `${this.base}/authorization/${id}`;
  }
  challenge(authorizationId: string, type: ChallengeType): string {
    return `${this.base}/challenge/${authorizationId}/${type}`;
  }
  certificate(serialHex: string): string {
    return `${this.base}/certificate/${serialHex}`;
  }

  /** Returns the account id of a JWS `kid`, or undefined when the kid is not an account URL of this directory. */
  accountIdOfKid(kid: string): string | undefined {
    const prefix = `${this.base}/account/`;
    if (!kid.startsWith(prefix)) return undefined;
    const id = kid.slice(prefix.length);
    return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : undefined;
  }
}
