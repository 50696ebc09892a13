import { KeywardError, notFound } from "../../../errors.ts";
import {
  createKey,
  type DecryptRequest,
  decrypt,
  type EncryptRequest,
  encrypt,
  generateDataKey,
  newDataKey,
  supports,
} from "../../../keys/index.ts";
import type { KeyType, ManagedKey } from "../../../keys/types.ts";
import { checkKeyUse, loadKeyFor, type OperationContext, requireValue } from "../access.ts";
import { assertBatchSize, batchStatus, itemField, runItems, runItemsAsync } from "../batch.ts";
import { decodeBase64, decodeOptionalBase64 } from "../encoding.ts";
import { hsmDecrypt, hsmEncrypt } from "../hsm/operations.ts";
import type {
  BatchOptions,
  BatchOutcome,
  DataKeyRequest,
  DataKeyResult,
  DecryptItem,
  DecryptResult,
  EncryptItem,
  EncryptOptions,
  EncryptResult,
  Outcome,
  RewrapItem,
} from "../types.ts";

/** Data key sizes the datakey endpoint accepts, in bits. */
export const DATA_KEY_BITS = [128, 256, 512] as const;

/** Decodes an encrypt item's fields, naming the item's fields in errors. */
function encryptRequestOf(item: EncryptItem, index: number | undefined): EncryptRequest {
  const field = (name: string) => itemField(index, name);
  const plaintext = decodeBase64(
    requireValue(item.plaintext, field("plaintext")),
    field("plaintext"),
  );
  return {
    plaintext,
    context: decodeOptionalBase64(item.context, field("context")),
    nonce: decodeOptionalBase64(item.nonce, field("nonce")),
    associatedData: decodeOptionalBase64(item.associatedData, field("associated_data")),
    keyVersion: item.keyVersion || undefined,
  };
}

/** Decodes a decrypt item's fields, naming the item's fields in errors. */
function decryptRequestOf(item: DecryptItem, index: number | undefined): DecryptRequest {
  const field = (name: string) => itemField(index, name);
  const ciphertext = requireValue(item.ciphertext, field("ciphertext"));
  // Vault reads `nonce` on decrypt only for keys made by Vault 0.6.1. Keyward
  // ciphertexts carry their nonce, so the field is validated and otherwise unused.
  decodeOptionalBase64(item.nonce, field("nonce"));
  return {
    ciphertext,
    context: decodeOptionalBase64(item.context, field("context")),
    associatedData: decodeOptionalBase64(item.associatedData, field("associated_data")),
  };
}

function encryptOne(
  context: OperationContext,
  key: ManagedKey,
  item: EncryptItem,
  index: number | undefined,
): EncryptResult {
  return encrypt(key, encryptRequestOf(item, index), context.now);
}

function decryptOne(
  context: OperationContext,
  key: ManagedKey,
  item: DecryptItem,
  index: number | undefined,
): DecryptResult {
  const result = decrypt(key, decryptRequestOf(item, index), context.now);
  return { plaintext: result.plaintext.toString("base64") };
}

/** Decodes a rewrap item: the ciphertext to decrypt and the request that encrypts it again. */
function rewrapRequestsOf(
  item: RewrapItem,
  index: number | undefined,
): { decryption: DecryptRequest; encryption: Omit<EncryptRequest, "plaintext"> } {
  const field = (name: string) => itemField(index, name);
  const ciphertext = requireValue(item.ciphertext, field("ciphertext"));
  const derivationContext = decodeOptionalBase64(item.context, field("context"));
  const nonce = decodeOptionalBase64(item.nonce, field("nonce"));
  return {
    decryption: { ciphertext, context: derivationContext },
    encryption: { context: derivationContext, nonce, keyVersion: item.keyVersion || undefined },
  };
}

function rewrapOne(
  context: OperationContext,
  key: ManagedKey,
  item: RewrapItem,
  index: number | undefined,
): EncryptResult {
  const { decryption, encryption } = rewrapRequestsOf(item, index);
  const { plaintext } = decrypt(key, decryption, context.now);
  try {
    return encrypt(key, { ...encryption, plaintext }, context.now);
  } finally {
    plaintext.fill(0);
  }
}

async function hsmDecryptOne(
  context: OperationContext,
  key: ManagedKey,
  item: DecryptItem,
  index: number | undefined,
): Promise<DecryptResult> {
  const plaintext = await hsmDecrypt(context, key, decryptRequestOf(item, index));
  try {
    return { plaintext: plaintext.toString("base64") };
  } finally {
    plaintext.fill(0);
  }
}

async function hsmRewrapOne(
  context: OperationContext,
  key: ManagedKey,
  item: RewrapItem,
  index: number | undefined,
): Promise<EncryptResult> {
  const { decryption, encryption } = rewrapRequestsOf(item, index);
  const plaintext = await hsmDecrypt(context, key, decryption);
  try {
    return await hsmEncrypt(context, key, { ...encryption, plaintext });
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Rejects a batch where some items have a context and others do not, as
 * Vault does: a derived key needs one in every item, and an upserted key is
 * made derived or not from the first item.
 */
function assertConsistentContext(items: EncryptItem[]): void {
  const hasContext = (item: EncryptItem) => (item.context ?? "") !== "";
  const first = items[0] !== undefined && hasContext(items[0]);
  if (items.some((item) => hasContext(item) !== first)) {
    throw new KeywardError(
      "invalid_request",
      "context must be set either in every batch_input item or in none",
      { field: "batch_input" },
    );
  }
}

/**
 * Returns key `name`, creating it when it is missing and upserting is
 * enabled, as Vault's encrypt endpoint does. The new key has `options.type`
 * (default `aes256-gcm96`) and is derived when the first item has a context.
 */
async function findOrCreateEncryptionKey(
  context: OperationContext,
  name: string,
  items: EncryptItem[],
  options: EncryptOptions & { disableUpsert: boolean },
  batch: boolean,
): Promise<ManagedKey> {
  const existing = await context.store.find(name);
  if (existing !== undefined) return existing;
  if (options.disableUpsert) throw notFound(`key "${name}"`);
  // A single request that would fail anyway must not create the key first.
  if (!batch && items[0] !== undefined) {
    const [item] = items;
    decodeBase64(requireValue(item.plaintext, "plaintext"), "plaintext");
    decodeOptionalBase64(item.context, "context");
  }

  const type: KeyType = options.type ?? "aes256-gcm96";
  if (!supports(type, "encrypt")) {
    throw new KeywardError(
      "unsupported_operation",
      `key type ${type} does not support encryption, so encrypt cannot create it`,
      { field: "type" },
    );
  }
  const derived = (items[0]?.context ?? "") !== "";
  if (options.convergentEncryption === true && !derived) {
    throw new KeywardError(
      "invalid_request",
      "convergent encryption requires derivation, so a context is required",
      { field: "convergent_encryption" },
    );
  }

  return context.store.withLock(name, async () => {
    const created = await context.store.find(name);
    if (created !== undefined) return created;
    const key = createKey(
      name,
      type,
      { derived, convergentEncryption: options.convergentEncryption === true },
      context.now,
    );
    const stored = await context.store.create(key);
    if (stored.created) {
      context.logger.info({ mount: context.mount, key: name, type }, "key created by encrypt");
    }
    return stored.key;
  });
}

/**
 * Encrypts each item. A batch gets Vault's batch status (see `batchStatus`),
 * and a single request throws its item's error.
 */
export async function encryptItems(
  context: OperationContext,
  name: string,
  items: EncryptItem[],
  options: EncryptOptions & { disableUpsert: boolean },
  batch: boolean,
): Promise<BatchOutcome<EncryptResult>> {
  if (batch) {
    assertBatchSize(items);
    assertConsistentContext(items);
  }
  const key = await findOrCreateEncryptionKey(context, name, items, options, batch);
  const warnings: string[] = [];
  checkKeyUse(context, key, "encrypt", warnings);
  const logFields = { mount: context.mount, key: name, operation: "encrypt" };
  const results =
    key.hsm === true
      ? await runItemsAsync(
          items,
          batch,
          (item, index) => hsmEncrypt(context, key, encryptRequestOf(item, index)),
          context.logger,
          logFields,
        )
      : runItems(
          items,
          batch,
          (item, index) => encryptOne(context, key, item, index),
          context.logger,
          logFields,
        );
  const status = batchStatus(results, options.partialFailureResponseCode, warnings);
  return { results, status, warnings };
}

export async function decryptItems(
  context: OperationContext,
  name: string,
  items: DecryptItem[],
  options: BatchOptions,
  batch: boolean,
): Promise<BatchOutcome<DecryptResult>> {
  if (batch) assertBatchSize(items);
  const warnings: string[] = [];
  const key = await loadKeyFor(context, name, "decrypt", warnings);
  const logFields = { mount: context.mount, key: name, operation: "decrypt" };
  const results =
    key.hsm === true
      ? await runItemsAsync(
          items,
          batch,
          (item, index) => hsmDecryptOne(context, key, item, index),
          context.logger,
          logFields,
        )
      : runItems(
          items,
          batch,
          (item, index) => decryptOne(context, key, item, index),
          context.logger,
          logFields,
        );
  const status = batchStatus(results, options.partialFailureResponseCode, warnings);
  return { results, status, warnings };
}

/** Decrypts each item and encrypts it again with the latest (or the requested) key version. */
export async function rewrapItems(
  context: OperationContext,
  name: string,
  items: RewrapItem[],
  options: BatchOptions,
  batch: boolean,
): Promise<BatchOutcome<EncryptResult>> {
  if (batch) assertBatchSize(items);
  const warnings: string[] = [];
  const key = await loadKeyFor(context, name, "decrypt", warnings);
  checkKeyUse(context, key, "encrypt", warnings);
  const logFields = { mount: context.mount, key: name, operation: "rewrap" };
  const results =
    key.hsm === true
      ? await runItemsAsync(
          items,
          batch,
          (item, index) => hsmRewrapOne(context, key, item, index),
          context.logger,
          logFields,
        )
      : runItems(
          items,
          batch,
          (item, index) => rewrapOne(context, key, item, index),
          context.logger,
          logFields,
        );
  const status = batchStatus(results, options.partialFailureResponseCode, warnings);
  return { results, status, warnings };
}

/** Generates a data key and returns it encrypted under key `name`, and in plaintext when asked. */
export async function generateDataKeyFor(
  context: OperationContext,
  name: string,
  request: DataKeyRequest,
): Promise<Outcome<DataKeyResult>> {
  const bits = request.bits ?? 256;
  if (!(DATA_KEY_BITS as readonly number[]).includes(bits)) {
    throw new KeywardError("invalid_field", `"bits" must be one of ${DATA_KEY_BITS.join(", ")}`, {
      field: "bits",
    });
  }
  const warnings: string[] = [];
  const key = await loadKeyFor(context, name, "encrypt", warnings);
  const dataKeyRequest = {
    bits: bits as (typeof DATA_KEY_BITS)[number],
    context: decodeOptionalBase64(request.context, "context"),
    nonce: decodeOptionalBase64(request.nonce, "nonce"),
    keyVersion: request.keyVersion || undefined,
  };
  const generated =
    key.hsm === true
      ? await hsmDataKey(context, key, dataKeyRequest)
      : generateDataKey(key, dataKeyRequest, context.now);
  const value: DataKeyResult = {
    ciphertext: generated.ciphertext,
    keyVersion: generated.keyVersion,
  };
  if (request.kind === "plaintext") value.plaintext = generated.plaintext.toString("base64");
  generated.plaintext.fill(0);
  return { value, warnings };
}

/** Generates a data key and encrypts it in the HSM, as `generateDataKey` does in this process. */
async function hsmDataKey(
  context: OperationContext,
  key: ManagedKey,
  request: Omit<EncryptRequest, "plaintext"> & { bits: number },
): Promise<{ plaintext: Buffer; ciphertext: string; keyVersion: number }> {
  const { bits, ...encryption } = request;
  const plaintext = newDataKey(bits);
  try {
    const encrypted = await hsmEncrypt(context, key, { ...encryption, plaintext });
    return { plaintext, ...encrypted };
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
}
