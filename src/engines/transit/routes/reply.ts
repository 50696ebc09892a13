import type { FastifyReply, FastifyRequest } from "fastify";
import { envelope } from "../../../api/envelope.ts";
import type { BatchItemResult, BatchOutcome, Outcome } from "../types.ts";

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * Renames an object's own fields from camelCase to Vault's snake_case.
 * Shallow: nested values, such as a key's `keys` map, are copied unchanged.
 */
export function toWire(value: object): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) wire[snakeCase(name)] = field;
  return wire;
}

/** Converts a batch result to a `batch_results` entry as Vault sends it, with Keyward's stable `code` on errors. */
export function toWireBatchItem(result: BatchItemResult<object>): Record<string, unknown> {
  if (result.ok) {
    const { ok: _ok, ...value } = result;
    return toWire(value);
  }
  const item: Record<string, unknown> = { error: result.error, code: result.code };
  if (result.reference !== undefined) item.reference = result.reference;
  return item;
}

/** Sends `data` in Vault's envelope with status 200. */
export function sendData(
  request: FastifyRequest,
  reply: FastifyReply,
  data: object,
  warnings: string[] = [],
) {
  return reply.code(200).send(envelope(toWire(data), { requestId: request.id, warnings }));
}

export function sendOutcome(
  request: FastifyRequest,
  reply: FastifyReply,
  outcome: Outcome<object>,
) {
  return sendData(request, reply, outcome.value, outcome.warnings);
}

/**
 * Sends a batch as Vault does: `batch_results` in the envelope, with the
 * batch's status. A failed batch keeps the envelope (not the error body), so
 * the caller still gets every item's result.
 */
export function sendBatch(
  request: FastifyRequest,
  reply: FastifyReply,
  outcome: BatchOutcome<object>,
) {
  const data = { batch_results: outcome.results.map(toWireBatchItem) };
  return reply
    .code(outcome.status)
    .send(envelope(data, { requestId: request.id, warnings: outcome.warnings }));
}

/** Replies 204 with no body, as Vault does for operations that return no data. */
export function sendNoContent(reply: FastifyReply) {
  return reply.code(204).send();
}
