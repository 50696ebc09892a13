import { ERROR_CODES, isKeywardError, KeywardError } from "../../errors.ts";
import type { BatchItemResult, Logger } from "./types.ts";

/** Maximum number of items in one `batch_input`. Vault sets none; this bounds the work of one request. */
export const MAX_BATCH_ITEMS = 10_000;

const INTERNAL_ITEM_MESSAGE = "internal error; the server log has details";

/** Returns the name of an item's field: `plaintext` in a single request, `batch_input[3].plaintext` in a batch. */
export function itemField(index: number | undefined, field: string): string {
  return index === undefined ? field : `batch_input[${index}].${field}`;
}

/**
 * Runs `process` on every item and collects one result per item, in input
 * order. A caller's error (a 4xx `KeywardError`) becomes that item's `error`
 * and `code`. Any other error is logged and reported with a fixed message, so
 * internal details never reach the caller.
 */
export function runBatch<I extends { reference?: string }, R extends object>(
  items: I[],
  process: (item: I, index: number) => R,
  logger: Logger,
  context: Record<string, unknown>,
): BatchItemResult<R>[] {
  return items.map((item, index) => {
    try {
      return { ok: true as const, ...process(item, index), ...referenceOf(item) };
    } catch (error) {
      return failedItem(item, index, error, logger, context);
    }
  });
}

function referenceOf(item: { reference?: string }): { reference?: string } {
  return item.reference === undefined ? {} : { reference: item.reference };
}

/** Returns the result of an item that threw: its own error for a caller's error, else a fixed message. */
function failedItem(
  item: { reference?: string },
  index: number,
  error: unknown,
  logger: Logger,
  context: Record<string, unknown>,
): BatchItemResult<never> {
  const reference = referenceOf(item);
  if (isKeywardError(error) && error.isClientError) {
    return { ok: false as const, error: error.message, code: error.code, ...reference };
  }
  logger.error({ ...context, item: index, err: error }, "batch item failed");
  const code = isKeywardError(error) ? error.code : "internal";
  return { ok: false as const, error: INTERNAL_ITEM_MESSAGE, code, ...reference };
}

/**
 * Returns the HTTP status of an encrypt, decrypt or rewrap batch. The rules
 * are those of `batchRequestResponse` in Vault's transit engine
 * (path_encrypt.go, also in OpenBao). The status is 400 when any item failed
 * through the caller's input, otherwise 500 when any failed internally,
 * otherwise 200.
 *
 * When some items succeeded, the caller may set `partial_failure_response_code`
 * to replace the error status. The route schema limits it to statuses that
 * carry a body and are not 5xx; a value outside 200 to 599 that reaches this
 * function is ignored with a warning, as in Vault.
 *
 * Vault's sign, verify and HMAC endpoints return 200 however many items fail,
 * with the errors only in `batch_results`; those routes do not call this.
 */
export function batchStatus(
  results: BatchItemResult<object>[],
  partialFailureResponseCode: number | undefined,
  warnings: string[],
): number {
  const failed = results.filter((result) => !result.ok);
  if (failed.length === 0) return 200;

  const callerError = failed.some((result) => ERROR_CODES[result.code] < 500);
  let status = callerError ? 400 : 500;
  const anySucceeded = failed.length < results.length;
  if (partialFailureResponseCode !== undefined && anySucceeded) {
    if (partialFailureResponseCode >= 200 && partialFailureResponseCode <= 599) {
      status = partialFailureResponseCode;
    } else {
      warnings.push(
        `invalid HTTP response code override from partial_failure_response_code, reverting to ${status}`,
      );
    }
  }
  return status;
}

/** Throws `invalid_field` on `batch_input` unless it has 1 to `MAX_BATCH_ITEMS` items. */
export function assertBatchSize(items: unknown[]): void {
  if (items.length === 0 || items.length > MAX_BATCH_ITEMS) {
    throw new KeywardError(
      "invalid_field",
      `"batch_input" must contain 1 to ${MAX_BATCH_ITEMS} items`,
      { field: "batch_input" },
    );
  }
}

/**
 * Processes a request's items. A single (non-batch) request has one item,
 * and its error is thrown, so it fails the whole request. A batch collects
 * one result per item through `runBatch`.
 */
export function runItems<I extends { reference?: string }, R extends object>(
  items: I[],
  batch: boolean,
  process: (item: I, index: number | undefined) => R,
  logger: Logger,
  context: Record<string, unknown>,
): BatchItemResult<R>[] {
  if (!batch) {
    const [item] = items;
    if (item === undefined || items.length !== 1) {
      throw new KeywardError("internal", "internal error", {
        details: { reason: "a single request must have exactly one item" },
      });
    }
    return [{ ok: true, ...process(item, undefined) }];
  }
  return runBatch(items, process, logger, context);
}

/** Returns the value of a single request's only result. */
export function singleResult<R extends object>(results: BatchItemResult<R>[]): R {
  const [result] = results;
  if (result === undefined || !result.ok) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "a single request produced no result" },
    });
  }
  const { ok: _ok, reference: _reference, ...value } = result;
  return value as unknown as R;
}

/**
 * Processes a request's items as `runItems` does, with an asynchronous
 * `process`, one item after the other: the work goes to one HSM session,
 * which runs one operation at a time anyway.
 */
export async function runItemsAsync<I extends { reference?: string }, R extends object>(
  items: I[],
  batch: boolean,
  process: (item: I, index: number | undefined) => Promise<R>,
  logger: Logger,
  context: Record<string, unknown>,
): Promise<BatchItemResult<R>[]> {
  if (!batch) {
    const [item] = items;
    if (item === undefined || items.length !== 1) {
      throw new KeywardError("internal", "internal error", {
        details: { reason: "a single request must have exactly one item" },
      });
    }
    return [{ ok: true, ...(await process(item, undefined)) }];
  }
  const results: BatchItemResult<R>[] = [];
  for (const [index, item] of items.entries()) {
    try {
      results.push({ ok: true as const, ...(await process(item, index)), ...referenceOf(item) });
    } catch (error) {
      results.push(failedItem(item, index, error, logger, context));
    }
  }
  return results;
}
