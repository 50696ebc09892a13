import type { FastifyRequest } from "fastify";
import type { TransitService } from "../service.ts";

/**
 * Returns the transit service that serves a request. Routes call it on every
 * request, so an app can pick the current service when services are rebuilt
 * at each unseal or one set of routes serves several mounts. It may throw a
 * `KeywardError` such as `sealed` or `not_found`.
 */
export type ServiceResolver = (request: FastifyRequest) => TransitService;
