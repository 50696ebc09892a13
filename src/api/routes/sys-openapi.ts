import type { FastifyInstance } from "fastify";

/**
 * Serves the OpenAPI 3 document, generated from the route schemas, at
 * `/v1/sys/openapi` and at Vault's path `/v1/sys/internal/specs/openapi`.
 */
export async function registerOpenApiRoutes(app: FastifyInstance) {
  for (const url of ["/v1/sys/openapi", "/v1/sys/internal/specs/openapi"]) {
    app.get(url, {
      schema: { tags: ["sys"], summary: "The OpenAPI 3 document of this API.", hide: true },
      handler: async () => app.swagger(),
    });
  }
}
