import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { createFastify } from "../../src/api/app.ts";
import { requestToken } from "../../src/api/authentication.ts";
import { registerAppRoleRoutes } from "../../src/api/routes/auth-approle.ts";
import { registerTokenRoutes } from "../../src/api/routes/auth-token.ts";
import { registerGenerateRootRoutes } from "../../src/api/routes/sys-generate-root.ts";
import { AppRoleBackend } from "../../src/auth/approle/backend.ts";
import { LoginRateLimiter } from "../../src/auth/rate-limiter.ts";
import { RootTokenGenerator } from "../../src/auth/root-generation.ts";
import { TokenStore } from "../../src/auth/token-store.ts";
import { KeywardError } from "../../src/errors.ts";
import type { InitResult, SealManager } from "../../src/seal/types.ts";
import { initAndUnseal, SealFixture } from "../seal/fixtures.ts";
import { FixedClock } from "./fixtures.ts";

export interface AuthRouteFixture {
  app: FastifyInstance;
  seal: SealManager;
  shares: InitResult;
  clock: FixedClock;
  tokens: TokenStore;
  approle: AppRoleBackend;
  rootToken: string;
  /** Sends a request with the root token unless `token` is given (null sends none). */
  request(options: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * Builds a bare Fastify app with the token, AppRole and generate-root
 * routes over a real SQLite seal (3 shares, threshold 2), set up as the
 * API's app is, with an authentication hook that does what the API's hook
 * must: skip public routes, rate-limit failed token checks per source
 * address, and call `tokens.authenticate` with the source address.
 */
export async function createAuthRouteFixture(): Promise<AuthRouteFixture> {
  const fixture = await SealFixture.create();
  const { seal } = await fixture.openManager();
  const shares = await initAndUnseal(seal, 3, 2);
  const clock = new FixedClock();
  const tokens = new TokenStore(seal.barrier, { clock: clock.now });
  const approle = new AppRoleBackend(seal.barrier, tokens, {
    clock: clock.now,
    rateLimit: { clock: clock.millis },
  });
  seal.onChange((sealed) => {
    if (sealed) {
      tokens.clearCache();
      approle.clearCache();
    }
  });
  const generator = new RootTokenGenerator(seal, tokens);
  const rootToken = await tokens.createRootToken();
  const tokenFailures = new LoginRateLimiter({ clock: clock.millis });

  const app = createFastify();
  app.addHook("preValidation", async (request) => {
    if ((request.body === undefined || request.body === null) && request.method !== "GET") {
      request.body = {};
    }
  });
  app.addHook("onRequest", async (request) => {
    if (request.routeOptions.config?.public === true || request.is404) return;
    const token = requestToken(request);
    if (token === undefined) throw new KeywardError("missing_token", "missing client token");
    const addressKey = `address:${request.ip}`;
    tokenFailures.check(addressKey);
    try {
      request.identity = await tokens.authenticate(token, { sourceIp: request.ip });
    } catch (error) {
      if (error instanceof KeywardError && error.code === "permission_denied") {
        tokenFailures.fail(addressKey);
      }
      throw error;
    }
    tokenFailures.succeed(addressKey);
  });

  await registerTokenRoutes(app, tokens);
  await registerAppRoleRoutes(app, approle);
  await registerGenerateRootRoutes(app, generator);
  await app.ready();

  return {
    app,
    seal,
    shares,
    clock,
    tokens,
    approle,
    rootToken,
    request({ token, headers, ...rest }) {
      const sent = token === null ? undefined : (token ?? rootToken);
      return app.inject({
        ...rest,
        headers: { ...(sent ? { "x-vault-token": sent } : {}), ...headers },
      });
    },
    async close() {
      await app.close();
      await fixture.remove();
    },
  };
}
