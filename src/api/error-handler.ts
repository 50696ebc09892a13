import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { type ErrorCode, isKeywardError, KeywardError } from "../errors.ts";

/** The error body: Vault's `errors` list, plus Keyward's stable code, the field and the request id. */
export interface ErrorBody {
  errors: string[];
  code: ErrorCode;
  field?: string;
  request_id: string;
}

const INTERNAL_MESSAGE = "internal error; the server log has details under this request id";

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns an AJV instance path such as `/batch_input/3/plaintext` into `batch_input[3].plaintext`. */
export function fieldName(instancePath: string, child?: string): string {
  const segments = instancePath.split("/").filter((segment) => segment !== "");
  if (child !== undefined) segments.push(child);
  let name = "";
  for (const segment of segments) {
    const unescaped = segment.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(unescaped)) name += `[${unescaped}]`;
    else name += name === "" ? unescaped : `.${unescaped}`;
  }
  return name;
}

/** Maps the first schema-validation failure to a KeywardError that names the field. */
export function validationError(errors: AjvError[], context: string): KeywardError {
  const first = errors[0];
  if (!first) return new KeywardError("invalid_request", "the request is invalid");
  const where = context === "body" ? "" : `${context} `;
  if (first.keyword === "required") {
    const field = fieldName(first.instancePath, String(first.params.missingProperty));
    return new KeywardError("missing_field", `missing required ${where}field "${field}"`, {
      field,
    });
  }
  if (first.keyword === "additionalProperties") {
    const field = fieldName(first.instancePath, String(first.params.additionalProperty));
    return new KeywardError("unknown_field", `unknown ${where}field "${field}"`, { field });
  }
  const field = fieldName(first.instancePath);
  if (field === "") {
    return new KeywardError(
      "invalid_request",
      `the request ${context} ${first.message ?? "is invalid"}`,
    );
  }
  return new KeywardError("invalid_field", `invalid ${where}field "${field}": ${first.message}`, {
    field,
  });
}

/** Maps Fastify's own errors (body parsing, limits, media types) to Keyward codes. */
function fromFastifyError(error: FastifyError): KeywardError | undefined {
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new KeywardError(
        "body_too_large",
        "the request body exceeds the configured maximum request size",
      );
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new KeywardError("unsupported_media_type", "the request body must be JSON");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new KeywardError("invalid_json", "the request body is empty; send a JSON object");
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === "FST_ERR_CTP_INVALID_JSON_BODY") {
    return new KeywardError("invalid_json", "the request body is not valid JSON");
  }
  return undefined;
}

/** Normalises anything thrown by a handler, hook or Fastify itself into a KeywardError. */
export function toKeywardError(error: unknown): KeywardError {
  if (isKeywardError(error)) return error;
  const fastifyError = error as FastifyError & {
    validation?: AjvError[];
    validationContext?: string;
  };
  if (Array.isArray(fastifyError.validation)) {
    return validationError(fastifyError.validation, fastifyError.validationContext ?? "body");
  }
  const mapped = fromFastifyError(fastifyError);
  if (mapped) return mapped;
  const status = fastifyError.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new KeywardError("invalid_request", "the request is invalid", { cause: error });
  }
  return new KeywardError("internal", INTERNAL_MESSAGE, { cause: error });
}

/**
 * Fastify's error handler. The caller gets the code, the public message and
 * the request id; causes and internal messages go only to the log, and a 5xx
 * always sends the same fixed message.
 */
export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const keywardError = toKeywardError(error);
  const status = keywardError.status;
  // Sealed and uninitialised are 503s whose message helps the caller and reveals nothing internal,
  // and so is an audit failure, whose message is the same whichever record could not be written.
  const publicMessage =
    status < 500 || status === 503 || keywardError.code === "audit_failure"
      ? keywardError.message
      : INTERNAL_MESSAGE;
  const body: ErrorBody = {
    errors: [publicMessage],
    code: keywardError.code,
    request_id: request.id,
  };
  if (keywardError.field !== undefined) body.field = keywardError.field;

  const logFields = {
    code: keywardError.code,
    field: keywardError.field,
    details: keywardError.details,
  };
  if (status >= 500 && status !== 503) {
    request.log.error({ ...logFields, err: keywardError.cause ?? keywardError }, "request failed");
  } else {
    request.log.debug(logFields, keywardError.message);
  }
  return reply.status(status).type("application/json").send(body);
}
