import type { Socket } from "node:net";
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteOptions,
} from "fastify";
import FindMyWay from "find-my-way";
import type { Keyward } from "../core/keyward.ts";
import { KeywardError } from "../errors.ts";
import { authorize } from "./authorization.ts";
import { engineOfUrl } from "./engine-constraint.ts";
import { handleError } from "./error-handler.ts";

/** Methods whose absence on a matching path makes a request 405 rather than 404. */
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] as const;

/**
 * Requests that match no route. A path that some route serves with another
 * method gets 405 `method_not_allowed` with an Allow header; anything else
 * gets 404 `route_not_found`. Fastify's router cannot be asked about other
 * methods, so the routes are mirrored into a second find-my-way router (the
 * library Fastify routes with) as they are registered, one router per
 * `engine` route constraint, so a path counts only for the engine mounted
 * there. Either response is sent only after the caller's policies allow
 * the path.
 */
export function registerUnmatchedHandling(
  app: FastifyInstance,
  keyward: Keyward,
  maxParamLength: number,
) {
  const mirrors = new Map<string, ReturnType<typeof FindMyWay>>();
  const mirrorFor = (engine: string) => {
    let mirror = mirrors.get(engine);
    if (!mirror) {
      mirror = FindMyWay({ maxParamLength, ignoreTrailingSlash: false });
      mirrors.set(engine, mirror);
    }
    return mirror;
  };
  // Routes are mirrored when the first unmatched request arrives, because
  // an engine's own onRoute hook adds its constraint after this one runs.
  const pending: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    pending.push(route);
  });
  const flushPending = () => {
    for (const route of pending.splice(0)) {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const engine = (route.constraints as { engine?: string } | undefined)?.engine ?? "";
      const mirror = mirrorFor(engine);
      for (const method of methods) {
        if (!(METHODS as readonly string[]).includes(method)) continue;
        if (mirror.find(method as "GET", route.url)) continue;
        mirror.on(method as "GET", route.url, () => undefined);
      }
    }
  };

  app.setNotFoundHandler(async (request, reply) => {
    // A caller whose policies do not cover the path gets 403, as for a path
    // that exists, so unknown paths reveal nothing. The handler is async, so
    // it returns the reply it sent; returning nothing would make Fastify
    // send a second response.
    try {
      await authorize(keyward, request);
    } catch (error) {
      return handleError(error, request, reply);
    }
    flushPending();
    const path = request.url.split("?")[0] ?? "";
    const engine = engineOfUrl(keyward, path);
    const candidates = [mirrorFor(""), ...(engine ? [mirrorFor(engine)] : [])];
    const allowed = METHODS.filter((method) =>
      candidates.some((mirror) => mirror.find(method, path) !== null),
    );
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      return handleError(
        new KeywardError(
          "method_not_allowed",
          `${request.method} is not allowed on ${path}; allowed: ${allowed.join(", ")}`,
        ),
        request,
        reply,
      );
    }
    return handleError(
      new KeywardError("route_not_found", `no route for ${request.method} ${path}`),
      request,
      reply,
    );
  });
}

/**
 * Maps errors Fastify raises before routing (an undecodable path, a path
 * segment over the router's limit) into Keyward's error shape.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error.code === "FST_ERR_BAD_URL") {
    handleError(
      new KeywardError("invalid_request", "the request path is not valid percent-encoded UTF-8"),
      request,
      reply,
    );
    return;
  }
  if (error.code === "FST_ERR_MAX_PARAM_LENGTH") {
    handleError(
      new KeywardError(
        "invalid_request",
        "a path segment is longer than the maximum of 512 characters",
      ),
      request,
      reply,
    );
    return;
  }
  handleError(error, request, reply);
}

/**
 * Responds to requests that Node's HTTP parser rejects before they reach Fastify
 * (a malformed request line, an unknown method such as LIST, oversized
 * headers) with Keyward's JSON error shape, then closes the connection.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === "HPE_HEADER_OVERFLOW";
  const status = tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request";
  const body = JSON.stringify({
    errors: [tooLarge ? "the request headers are too large" : "the HTTP request is malformed"],
    code: tooLarge ? "request_header_too_large" : "invalid_request",
    request_id: "",
  });
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
