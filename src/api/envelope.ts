import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { KeywardError } from "../errors.ts";

/**
 * Vault's response envelope. Existing Vault clients read `data`, `auth` and
 * `warnings` from this shape, so every successful JSON response uses it.
 */
export interface VaultResponse<T> {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: T | null;
  wrap_info: null;
  warnings: string[] | null;
  auth: unknown;
  mount_type?: string;
}

export interface EnvelopeOptions {
  requestId?: string;
  warnings?: string[];
  auth?: unknown;
  mountType?: string;
}

/** Wraps response data in Vault's envelope. */
export function envelope<T>(data: T | null, options: EnvelopeOptions = {}): VaultResponse<T> {
  const response: VaultResponse<T> = {
    request_id: options.requestId ?? randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: options.warnings && options.warnings.length > 0 ? options.warnings : null,
    auth: options.auth ?? null,
  };
  if (options.mountType !== undefined) response.mount_type = options.mountType;
  return response;
}

/** Sends `data` in Vault's envelope with status 200. */
export function sendData(
  request: FastifyRequest,
  reply: FastifyReply,
  data: object,
  warnings: string[] = [],
) {
  return reply.code(200).send(envelope(data, { requestId: request.id, warnings }));
}

/** Sends a raw body, as Vault does for download paths such as `pki/ca/pem` and `ssh/public_key`. */
export function sendRaw(reply: FastifyReply, contentType: string, body: string | Uint8Array) {
  return reply
    .code(200)
    .type(contentType)
    .send(typeof body === "string" ? body : Buffer.from(body));
}

/** The spellings of true that Vault accepts in a query string. */
export const TRUE_STRINGS = ["1", "t", "T", "TRUE", "true", "True"];

/** Treats `?list=true` (or `1`) as Vault's LIST; anything else is rejected with 405. */
export function requireList(request: FastifyRequest): void {
  const list = (request.query as { list?: string } | undefined)?.list;
  if (list === undefined || !TRUE_STRINGS.includes(list)) {
    throw new KeywardError("method_not_allowed", "listing needs GET with list=true");
  }
}
