import type { JWK } from "jose";
import { eabPolicyOf } from "./config.ts";
import type { AcmeContext, AcmeScope } from "./context.ts";
import {
  checkAccountJwk,
  type FlattenedJws,
  jwkThumbprint,
  type ProtectedHeader,
  parsePayload,
  readFlattenedJws,
  readProtectedHeader,
  verifyJws,
} from "./jws.ts";
import { AcmeProblem } from "./problems.ts";
import type { AccountRecord } from "./records.ts";

/** The key a request must be signed with: the account's (`kid`), a key in the header (`jwk`, newAccount), or either (revokeCert). */
export type KeyRule = "kid" | "jwk" | "either";

/** A request whose JWS verified. */
export interface AuthenticatedRequest {
  jws: FlattenedJws;
  header: ProtectedHeader;
  /** The JSON payload; undefined for a POST-as-GET (empty payload). */
  payload: Record<string, unknown> | undefined;
  /** The key that signed the request. */
  jwk: JWK;
  thumbprint: string;
  /** The account of `kid`; set for every `kid` request. */
  account: AccountRecord | undefined;
}

/**
 * Checks an ACME request's JWS (RFC 8555 section 6.2). The checks run in
 * this order: the flattened form, an accepted algorithm, a fresh nonce, a
 * `url` equal to the request URL, exactly one of `kid` and `jwk` as `rule`
 * allows, the account behind `kid`, and the signature. Each failure throws
 * the problem RFC 8555 names for it, and a consumed nonce stays consumed.
 */
export async function authenticate(
  context: AcmeContext,
  scope: AcmeScope,
  body: unknown,
  rule: KeyRule,
): Promise<AuthenticatedRequest> {
  const jws = readFlattenedJws(body);
  const header = readProtectedHeader(jws);

  if (typeof header.nonce !== "string" || !context.nonces.consume(header.nonce)) {
    throw new AcmeProblem("badNonce", "the JWS nonce is missing, already used or expired");
  }
  if (typeof header.url !== "string") {
    throw new AcmeProblem("malformed", 'the JWS protected header has no "url"');
  }
  if (header.url !== scope.requestUrl) {
    throw new AcmeProblem(
      "unauthorized",
      `the JWS "url" is ${JSON.stringify(header.url)}, but the request was sent to ${scope.requestUrl}`,
    );
  }

  const hasKid = header.kid !== undefined;
  const hasJwk = header.jwk !== undefined;
  if (hasKid === hasJwk) {
    throw new AcmeProblem(
      "malformed",
      'the JWS protected header must have exactly one of "kid" and "jwk"',
    );
  }
  if (hasJwk && rule === "kid") {
    throw new AcmeProblem(
      "malformed",
      'this request must be signed with the account key ("kid"), not "jwk"',
    );
  }
  if (hasKid && rule === "jwk") {
    throw new AcmeProblem("malformed", 'this request must carry the new key as "jwk", not "kid"');
  }

  let account: AccountRecord | undefined;
  let jwk: JWK;
  if (hasKid) {
    account = await accountOfKid(context, scope, header.kid);
    jwk = account.jwk;
  } else {
    jwk = checkAccountJwk(header.jwk);
  }
  const payload = parsePayload(await verifyJws(jws, header.alg, jwk));
  const thumbprint = account?.thumbprint ?? (await jwkThumbprint(jwk));
  return { jws, header, payload, jwk, thumbprint, account };
}

async function accountOfKid(
  context: AcmeContext,
  scope: AcmeScope,
  kid: unknown,
): Promise<AccountRecord> {
  if (typeof kid !== "string") throw new AcmeProblem("malformed", 'the JWS "kid" is not a string');
  const id = scope.urls.accountIdOfKid(kid);
  const account = id === undefined ? undefined : await context.store.account(id);
  if (!account || account.directory !== scope.directory) {
    throw new AcmeProblem("accountDoesNotExist", "no account of this directory has that kid");
  }
  if (account.status !== "valid") {
    throw new AcmeProblem("unauthorized", `the account is ${account.status}`);
  }
  if (eabPolicyOf(scope.config, scope.directory) === "always-required" && !account.eabKeyId) {
    throw new AcmeProblem(
      "externalAccountRequired",
      "this directory requires external account binding for every account (its EAB policy is always-required); create a new account with an EAB key",
      { status: 403 },
    );
  }
  return account;
}
