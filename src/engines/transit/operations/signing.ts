import { KeywardError, missingField } from "../../../errors.ts";
import {
  HASH_ALGORITHMS,
  type HashAlgorithm,
  hmac,
  type SignRequest,
  sign,
  verify,
  verifyHmac,
} from "../../../keys/index.ts";
import type { ManagedKey } from "../../../keys/types.ts";
import { loadKeyFor, type OperationContext, requireValue } from "../access.ts";
import { assertBatchSize, itemField, runItems, runItemsAsync } from "../batch.ts";
import { decodeBase64, decodeOptionalBase64 } from "../encoding.ts";
import { hsmSign } from "../hsm/operations.ts";
import type {
  BatchOutcome,
  HmacItem,
  HmacOptions,
  HmacResult,
  SignatureOptions,
  SignItem,
  SignOptions,
  SignResult,
  VerifyItem,
  VerifyResult,
} from "../types.ts";

export const SIGNATURE_ALGORITHMS = ["pss", "pkcs1v15"] as const;
export const MARSHALING_ALGORITHMS = ["asn1", "jws"] as const;
/** Maximum explicit RSA-PSS salt length, in bytes. The key size limits it further. */
const MAX_SALT_LENGTH = 1024;

interface ParsedSignatureOptions {
  hashAlgorithm: HashAlgorithm;
  prehashed: boolean;
  signatureAlgorithm?: (typeof SIGNATURE_ALGORITHMS)[number];
  marshalingAlgorithm?: (typeof MARSHALING_ALGORITHMS)[number];
  saltLength?: "auto" | "hash" | number;
}

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  field: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new KeywardError("invalid_field", `"${field}" must be one of ${allowed.join(", ")}`, {
      field,
    });
  }
  return value as T;
}

/** Parses a hash algorithm name, defaulting to `sha2-256` as Vault does. */
export function parseHashAlgorithm(value: string | undefined, field: string): HashAlgorithm {
  return oneOf(value, HASH_ALGORITHMS, field) ?? "sha2-256";
}

function parseSaltLength(value: string | number | undefined): "auto" | "hash" | number | undefined {
  if (value === undefined || value === "auto" || value === "hash") return value;
  const length =
    typeof value === "number" ? value : /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(length) || length < 0 || length > MAX_SALT_LENGTH) {
    throw new KeywardError(
      "invalid_field",
      `"salt_length" must be "auto", "hash" or a number of bytes from 0 to ${MAX_SALT_LENGTH}`,
      { field: "salt_length" },
    );
  }
  return length;
}

function parseSignatureOptions(options: SignatureOptions): ParsedSignatureOptions {
  const parsed: ParsedSignatureOptions = {
    hashAlgorithm: parseHashAlgorithm(options.hashAlgorithm, "hash_algorithm"),
    prehashed: options.prehashed === true,
  };
  const signatureAlgorithm = oneOf(
    options.signatureAlgorithm,
    SIGNATURE_ALGORITHMS,
    "signature_algorithm",
  );
  if (signatureAlgorithm !== undefined) parsed.signatureAlgorithm = signatureAlgorithm;
  const marshaling = oneOf(
    options.marshalingAlgorithm,
    MARSHALING_ALGORITHMS,
    "marshaling_algorithm",
  );
  if (marshaling !== undefined) parsed.marshalingAlgorithm = marshaling;
  const saltLength = parseSaltLength(options.saltLength);
  if (saltLength !== undefined) parsed.saltLength = saltLength;
  return parsed;
}

function signRequestOf(
  options: ParsedSignatureOptions,
  keyVersion: number | undefined,
  item: SignItem,
  index: number | undefined,
): SignRequest {
  const input = decodeBase64(
    requireValue(item.input, itemField(index, "input")),
    itemField(index, "input"),
  );
  return {
    input,
    ...options,
    keyVersion,
    context: decodeOptionalBase64(item.context, itemField(index, "context")),
  };
}

function signOne(
  context: OperationContext,
  key: ManagedKey,
  options: ParsedSignatureOptions,
  keyVersion: number | undefined,
  item: SignItem,
  index: number | undefined,
): SignResult {
  const result = sign(key, signRequestOf(options, keyVersion, item, index), context.now);
  const value: SignResult = { signature: result.signature, keyVersion: result.keyVersion };
  if (result.publicKeyPem !== undefined) value.publicKey = result.publicKeyPem;
  return value;
}

export async function signItems(
  context: OperationContext,
  name: string,
  items: SignItem[],
  options: SignOptions,
  batch: boolean,
): Promise<BatchOutcome<SignResult>> {
  if (batch) assertBatchSize(items);
  const parsed = parseSignatureOptions(options);
  const warnings: string[] = [];
  const key = await loadKeyFor(context, name, "sign", warnings);
  const keyVersion = options.keyVersion || undefined;
  const logFields = { mount: context.mount, key: name, operation: "sign" };
  const results =
    key.hsm === true
      ? await runItemsAsync(
          items,
          batch,
          (item, index) => hsmSign(context, key, signRequestOf(parsed, keyVersion, item, index)),
          context.logger,
          logFields,
        )
      : runItems(
          items,
          batch,
          (item, index) => signOne(context, key, parsed, keyVersion, item, index),
          context.logger,
          logFields,
        );
  // Vault's sign endpoint returns 200 even when items fail, with the errors in the results.
  return { results, status: 200, warnings };
}

/**
 * Decides whether a verify request checks signatures or HMACs, with Vault's
 * rules: every item must carry the same one of `signature` and `hmac`.
 */
function verificationKind(items: VerifyItem[], batch: boolean): "signature" | "hmac" {
  let signatures = 0;
  let hmacs = 0;
  for (const [index, item] of items.entries()) {
    if (item.signature !== undefined && item.hmac !== undefined) {
      throw new KeywardError("invalid_request", `provide one of "signature" or "hmac", not both`, {
        field: batch ? `batch_input[${index}]` : "signature",
      });
    }
    if (item.signature !== undefined) signatures += 1;
    if (item.hmac !== undefined) hmacs += 1;
  }
  if (signatures === 0 && hmacs === 0) {
    if (!batch) throw missingField("signature");
    throw new KeywardError(
      "invalid_request",
      `no batch_input item has a "signature" or an "hmac" to verify`,
      { field: "batch_input" },
    );
  }
  if (signatures > 0 && hmacs > 0) {
    throw new KeywardError(
      "invalid_request",
      `batch_input items must all provide "signature" or all provide "hmac"`,
      { field: "batch_input" },
    );
  }
  const kind = signatures > 0 ? "signature" : "hmac";
  if (signatures + hmacs < items.length) {
    throw new KeywardError("invalid_request", `some batch_input items are missing "${kind}"`, {
      field: "batch_input",
    });
  }
  return kind;
}

export async function verifyItems(
  context: OperationContext,
  name: string,
  items: VerifyItem[],
  options: SignatureOptions,
  batch: boolean,
): Promise<BatchOutcome<VerifyResult>> {
  if (batch) assertBatchSize(items);
  const kind = verificationKind(items, batch);
  const warnings: string[] = [];
  let verifyOne: (item: VerifyItem, index: number | undefined) => VerifyResult;

  if (kind === "signature") {
    const parsed = parseSignatureOptions(options);
    const key = await loadKeyFor(context, name, "verify", warnings);
    verifyOne = (item, index) => {
      const input = decodeBase64(
        requireValue(item.input, itemField(index, "input")),
        itemField(index, "input"),
      );
      const result = verify(
        key,
        {
          input,
          signature: item.signature as string,
          ...parsed,
          context: decodeOptionalBase64(item.context, itemField(index, "context")),
        },
        context.now,
      );
      return { valid: result.valid };
    };
  } else {
    const algorithm = parseHashAlgorithm(options.hashAlgorithm, "algorithm");
    const key = await loadKeyFor(context, name, "hmac-verify", warnings);
    verifyOne = (item, index) => {
      const input = decodeBase64(
        requireValue(item.input, itemField(index, "input")),
        itemField(index, "input"),
      );
      const result = verifyHmac(key, { input, hmac: item.hmac as string, algorithm }, context.now);
      return { valid: result.valid };
    };
  }

  const results = runItems(items, batch, verifyOne, context.logger, {
    mount: context.mount,
    key: name,
    operation: kind === "signature" ? "verify" : "hmac-verify",
  });
  // Vault's verify endpoint returns 200 even when items fail.
  return { results, status: 200, warnings };
}

export async function hmacItems(
  context: OperationContext,
  name: string,
  items: HmacItem[],
  options: HmacOptions,
  batch: boolean,
): Promise<BatchOutcome<HmacResult>> {
  if (batch) assertBatchSize(items);
  const algorithm = parseHashAlgorithm(options.algorithm, "algorithm");
  const warnings: string[] = [];
  const key = await loadKeyFor(context, name, "hmac", warnings);
  const keyVersion = options.keyVersion || undefined;
  const hmacOne = (item: HmacItem, index: number | undefined): HmacResult => {
    const input = decodeBase64(
      requireValue(item.input, itemField(index, "input")),
      itemField(index, "input"),
    );
    return hmac(key, { input, algorithm, keyVersion }, context.now);
  };

  const results = runItems(items, batch, hmacOne, context.logger, {
    mount: context.mount,
    key: name,
    operation: "hmac",
  });
  // Vault's HMAC endpoint returns 200 even when items fail.
  return { results, status: 200, warnings };
}
