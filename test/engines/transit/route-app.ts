import Fastify, { type FastifyInstance, type RouteOptions } from "fastify";
import { handleError } from "../../../src/api/error-handler.ts";
import { registerTransitRoutes } from "../../../src/engines/transit/routes.ts";
import { KeywardError } from "../../../src/errors.ts";
import { createFixture, type ServiceFixture } from "./fixtures.ts";

export interface RouteFixture extends ServiceFixture {
  app: FastifyInstance;
  /** Every route the transit plugin registered. */
  routes: RouteOptions[];
}

/**
 * Builds a bare Fastify app with the transit routes under `/v1/transit`, set up as
 * the API's app is: AJV keeps unknown fields (so they are rejected), every
 * body is parsed as JSON, and errors go through the API's error handler. No
 * authentication.
 */
export async function createRouteFixture(): Promise<RouteFixture> {
  const fixture = createFixture();
  const app = Fastify({
    // Key names are up to 128 characters; the router's default limit is 100.
    routerOptions: { maxParamLength: 256 },
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: "array",
        useDefaults: true,
        allErrors: false,
      },
    },
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === "") return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new KeywardError("invalid_json", "the request body is not valid JSON"));
    }
  });
  app.setErrorHandler(handleError);
  const routes: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/v1/transit")) routes.push(route);
  });
  await app.register(async (scope) => registerTransitRoutes(scope, fixture.service), {
    prefix: "/v1/transit",
  });
  await app.ready();
  return { ...fixture, app, routes };
}
