import type { FastifyInstance, FastifyRequest } from "fastify";
import { LoginRateLimiter, rateLimitSource } from "../auth/rate-limiter.ts";
import type { Identity } from "../auth/token-store.ts";
import type { Keyward } from "../core/keyward.ts";
import { KeywardError } from "../errors.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The caller's identity, set once the token is checked. */
    identity?: Identity;
  }
  interface FastifyContextConfig {
    /** Routes that need no token: health, seal status, init and unseal, as in Vault. */
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
 * Checks the token of every request to a non-public route, including
 * requests to unknown routes, so that a caller without a valid token learns
 * nothing about which paths exist. A missing and an invalid token get the
 * same 403 status, as in Vault, with distinct codes. Failed token checks are
 * rate-limited per source address: past the limit they get 429 instead of
 * 403, while valid tokens from that address keep working. While sealed,
 * the check fails with `sealed` (503).
 */
export function registerAuthentication(app: FastifyInstance, keyward: Keyward) {
  const failures = new LoginRateLimiter({});
  app.addHook("onRequest", async (request) => {
    if (request.routeOptions.config?.public === true) return;
    const token = requestToken(request);
    if (token === undefined) {
      throw new KeywardError(
        "missing_token",
        "missing client token; send it in the X-Vault-Token or Authorization: Bearer header",
      );
    }
    const addressKey = `address:${rateLimitSource(request.ip)}`;
    try {
      request.identity = await keyward.tokens.authenticate(token, { sourceIp: request.ip });
    } catch (error) {
      if (!(error instanceof KeywardError)) throw error;
      if (error.code === "permission_denied") {
        // A valid token always works, so clients behind the same address as
        // a misbehaving one keep working; only failed checks are limited.
        failures.check(addressKey);
        failures.fail(addressKey);
      }
      if (error.code === "sealed" && !(await keyward.seal.status()).initialized) {
        throw new KeywardError(
          "not_initialized",
          "Keyward is not initialised; run `keyward operator init`",
        );
      }
      throw error;
    }
  });
}
