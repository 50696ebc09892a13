import { KeywardError, missingField } from "../../errors.ts";
import { assertAllowed, rejectHsmMaterialUse, supports } from "../../keys/index.ts";
import type { KeyOperation, ManagedKey } from "../../keys/types.ts";
import type { TransitHsm } from "./hsm/access.ts";
import type { KeyStore } from "./store.ts";
import type { Logger } from "./types.ts";

/** Context of one operation: the key store, the request's time, the logger, the mount and its HSM. */
export interface OperationContext {
  store: KeyStore;
  logger: Logger;
  mount: string;
  now: Date;
  /** The HSM for HSM-held keys; absent when the server has none. */
  hsm?: TransitHsm;
}

const OPERATION_VERBS: Record<KeyOperation, string> = {
  encrypt: "encryption",
  decrypt: "decryption",
  sign: "signing",
  verify: "signature verification",
  hmac: "HMAC generation",
  "hmac-verify": "HMAC verification",
  export: "export",
  rotate: "rotation",
};

/**
 * Throws `unsupported_operation` unless the key's type supports `operation`,
 * and for HMACs and export with an HSM-held key, which has no HMAC key and
 * whose material never leaves the HSM.
 */
export function assertSupported(key: ManagedKey, operation: KeyOperation): void {
  if (!supports(key.type, operation)) {
    throw new KeywardError(
      "unsupported_operation",
      `key "${key.name}" of type ${key.type} does not support ${OPERATION_VERBS[operation]}`,
    );
  }
  if (operation === "hmac" || operation === "hmac-verify" || operation === "export") {
    rejectHsmMaterialUse(key, OPERATION_VERBS[operation]);
  }
}

/**
 * Throws `invalid_state` when the key is scheduled for deletion. A key
 * waiting to be deleted rejects every operation, so that anything still
 * using it fails visibly while the deletion can still be cancelled.
 */
export function assertNotPendingDeletion(key: ManagedKey): void {
  if (key.deletionDate !== undefined) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" is scheduled for deletion at ${key.deletionDate}; cancel the deletion to use it`,
    );
  }
}

/**
 * Checks that `key` may perform `operation` now: its type supports it, it is
 * not scheduled for deletion, and its lifecycle state allows it. Using a
 * compromised key is allowed for the operations its state permits, but it is
 * logged and a warning is added to `warnings`.
 */
export function checkKeyUse(
  context: OperationContext,
  key: ManagedKey,
  operation: KeyOperation,
  warnings: string[],
): void {
  assertSupported(key, operation);
  assertNotPendingDeletion(key);
  const { flagged } = assertAllowed(key, operation, context.now);
  if (!flagged) return;

  const warning = `key "${key.name}" is marked compromised since ${key.compromisedAt ?? "an unknown time"}; data it protects may be exposed`;
  if (!warnings.includes(warning)) warnings.push(warning);
  context.logger.warn(
    { mount: context.mount, key: key.name, operation, compromisedAt: key.compromisedAt },
    "compromised key used",
  );
}

/** Reads key `name` and checks that it may perform `operation` now (see `checkKeyUse`). */
export async function loadKeyFor(
  context: OperationContext,
  name: string,
  operation: KeyOperation,
  warnings: string[],
): Promise<ManagedKey> {
  const key = await context.store.get(name);
  checkKeyUse(context, key, operation, warnings);
  return key;
}

/** Returns `value`, throwing `missing_field` naming `field` when it is absent. */
export function requireValue<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw missingField(field);
  return value;
}
