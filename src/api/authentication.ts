import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Identity } from "../auth/token-store.ts";
import type { Keyward } from "../core/keyward.ts";
import { KeywardError } from "../errors.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The caller's identity, set once the token is checked. */
    identity?: Identity;
  }
  interface FastifyContextConfig {
    /** Routes that answer without a token: health, seal status, init and unseal, as in Vault. */
    public?: boolean;
  }
}

/** Reads the token from `X-Vault-Token` or `Authorization: Bearer`, the two headers Vault accepts. */
export function requestToken(request: FastifyRequest): string | undefined {
  const header = request.headers["x-vault-token"];
  if (typeof header === "string" && header !== "") return header;
  const authorization = request.headers.authorization;
  if (typeof authorization === "string") {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Checks the token of every request to a non-public route. A missing and an
 * invalid token get the same 403 status, as in Vault, with distinct codes.
 * While sealed, the token lookup itself fails with `sealed` (503).
 */
export function registerAuthentication(app: FastifyInstance, keyward: Keyward) {
  app.addHook("onRequest", async (request) => {
    if (request.routeOptions.config?.public === true) return;
    if (request.is404) return;
    const token = requestToken(request);
    if (token === undefined) {
      throw new KeywardError(
        "missing_token",
        "missing client token; send it in the X-Vault-Token or Authorization: Bearer header",
      );
    }
    const identity = await keyward.tokens.lookup(token);
    if (identity === undefined) throw new KeywardError("permission_denied", "permission denied");
    request.identity = identity;
  });
}
