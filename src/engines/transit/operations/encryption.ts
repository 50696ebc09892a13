import { KeywardError, notFound } from "../../../errors.ts";
import { createKey, decrypt, encrypt, generateDataKey, supports } from "../../../keys/index.ts";
import type { KeyType, ManagedKey } from "../../../keys/types.ts";
import { checkKeyUse, loadKeyFor, type OperationContext, requireValue } from "../access.ts";
import { assertBatchSize, batchStatus, itemField, runItems } from "../batch.ts";
import { decodeBase64, decodeOptionalBase64 } from "../encoding.ts";
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

function encryptOne(
  context: OperationContext,
  key: ManagedKey,
  item: EncryptItem,
  index: number | undefined,
): EncryptResult {
  const field = (name: string) => itemField(index, name);
  const plaintext = decodeBase64(
    requireValue(item.plaintext, field("plaintext")),
    field("plaintext"),
  );
  return encrypt(
    key,
    {
      plaintext,
      context: decodeOptionalBase64(item.context, field("context")),
      nonce: decodeOptionalBase64(item.nonce, field("nonce")),
      associatedData: decodeOptionalBase64(item.associatedData, field("associated_data")),
      keyVersion: item.keyVersion || undefined,
    },
    context.now,
  );
}

function decryptOne(
  context: OperationContext,
  key: ManagedKey,
  item: DecryptItem,
  index: number | undefined,
): DecryptResult {
  const field = (name: string) => itemField(index, name);
  const ciphertext = requireValue(item.ciphertext, field("ciphertext"));
  // Vault reads `nonce` on decrypt only for keys made by Vault 0.6.1. Keyward
  // ciphertexts carry their nonce, so the field is validated and otherwise unused.
  decodeOptionalBase64(item.nonce, field("nonce"));
  const result = decrypt(
    key,
    {
      ciphertext,
      context: decodeOptionalBase64(item.context, field("context")),
      associatedData: decodeOptionalBase64(item.associatedData, field("associated_data")),
    },
    context.now,
  );
  return { plaintext: result.plaintext.toString("base64") };
}

function rewrapOne(
  context: OperationContext,
  key: ManagedKey,
  item: RewrapItem,
  index: number | undefined,
): EncryptResult {
  const field = (name: string) => itemField(index, name);
  const ciphertext = requireValue(item.ciphertext, field("ciphertext"));
  const derivationContext = decodeOptionalBase64(item.context, field("context"));
  const nonce = decodeOptionalBase64(item.nonce, field("nonce"));
  const { plaintext } = decrypt(key, { ciphertext, context: derivationContext }, context.now);
  try {
    return encrypt(
      key,
      { plaintext, context: derivationContext, nonce, keyVersion: item.keyVersion || undefined },
      context.now,
    );
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
  const results = runItems(
    items,
    batch,
    (item, index) => encryptOne(context, key, item, index),
    context.logger,
    {
      mount: context.mount,
      key: name,
      operation: "encrypt",
    },
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
  const results = runItems(
    items,
    batch,
    (item, index) => decryptOne(context, key, item, index),
    context.logger,
    {
      mount: context.mount,
      key: name,
      operation: "decrypt",
    },
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
  const results = runItems(
    items,
    batch,
    (item, index) => rewrapOne(context, key, item, index),
    context.logger,
    {
      mount: context.mount,
      key: name,
      operation: "rewrap",
    },
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
  const generated = generateDataKey(
    key,
    {
      bits: bits as (typeof DATA_KEY_BITS)[number],
      context: decodeOptionalBase64(request.context, "context"),
      nonce: decodeOptionalBase64(request.nonce, "nonce"),
      keyVersion: request.keyVersion || undefined,
    },
    context.now,
  );
  const value: DataKeyResult = {
    ciphertext: generated.ciphertext,
    keyVersion: generated.keyVersion,
  };
  if (request.kind === "plaintext") value.plaintext = generated.plaintext.toString("base64");
  generated.plaintext.fill(0);
  return { value, warnings };
}
