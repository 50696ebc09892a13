import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";
import type { Keyward } from "../core/keyward.ts";

/** Mount paths as `normaliseMountPath` allows them, as the first segment after `/v1/`. */
const MOUNT_SEGMENT = /^\/v1\/([a-z0-9][a-z0-9_-]{0,63})(?:[/?]|$)/;

/**
 * Adds the router constraint `engine`: the type of the engine mounted at
 * the first path segment after `/v1/`, looked up in Keyward's mount table.
 * Each engine's routes are registered under `/v1/:mount` with
 * `constraints: { engine: "<type>" }`, so engines whose paths overlap
 * (`keys`, `roles`) share one router. A request for a path where nothing
 * is mounted, or any request while sealed, matches no engine route.
 */
/** Returns the type of the engine mounted at a request URL's first segment after `/v1/`, if any. */
export function engineOfUrl(keyward: Keyward, url: string): string | undefined {
  const segment = MOUNT_SEGMENT.exec(url)?.[1];
  return segment === undefined ? undefined : keyward.engineType(segment);
}

export function addEngineConstraint(app: FastifyInstance, keyward: Keyward): void {
  app.addConstraintStrategy({
    name: "engine",
    storage() {
      const handlers = new Map<string, unknown>();
      return {
        get: (value: string) => (handlers.get(value) ?? null) as never,
        set: (value: string, store: unknown) => {
          handlers.set(value, store);
        },
      };
    },
    deriveConstraint(request: IncomingMessage) {
      return engineOfUrl(keyward, request.url ?? "");
    },
    mustMatchWhenDerived: false,
    validate(value: unknown) {
      if (typeof value !== "string") throw new TypeError("the engine constraint must be a string");
    },
  });
}

/** Makes every route registered in `scope` match only requests to mounts of `engine`. */
export function constrainToEngine(scope: FastifyInstance, engine: string): void {
  scope.addHook("onRoute", (route) => {
    route.constraints = { ...route.constraints, engine };
  });
}
