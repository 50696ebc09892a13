import type { FastifyInstance, RouteOptions } from "fastify";
import { createFastify } from "../../../src/api/app.ts";
import { registerTransitRoutes } from "../../../src/engines/transit/routes.ts";
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
  const app = createFastify();
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
