import {
  type KeyObjectType,
  type KeyProtection,
  keySelector,
  readKeyProtection,
  requireKey,
} from "./objects.ts";
import type { HsmToken, SessionContext } from "./token.ts";

/**
 * A key kept in a token, found by its label, or by its label and CKA_ID.
 * It keeps no handle. Each call looks the object up again, so a key deleted
 * or replaced in the token is noticed.
 */
export abstract class HsmKeyObject {
  readonly label: string;
  /** The CKA_ID that selects the key (both halves of a pair) together with its label, or undefined when the label alone does. */
  readonly id: Buffer | undefined;
  readonly #token: HsmToken;

  protected constructor(token: HsmToken, label: string, id: Buffer | undefined) {
    this.#token = token;
    this.label = label;
    this.id = id;
  }

  /**
   * Runs `work` with the handle of this key's `type` object, and throws
   * `hsm_key_not_found` when the token has none. `work` must be safe to
   * repeat, because it runs once more after a lost session.
   */
  protected withObject<T>(
    type: KeyObjectType,
    work: (context: SessionContext, handle: Buffer) => Promise<T> | T,
  ): Promise<T> {
    return this.#token.run(
      (context) => work(context, requireKey(context, keySelector(type, this.label, this.id))),
      { retryOnLostSession: true },
    );
  }

  /** Reads the protection of this key's `type` object, whose secret is in `valueAttribute` (see `readKeyProtection`). */
  protected readProtection(type: KeyObjectType, valueAttribute: number): Promise<KeyProtection> {
    return this.withObject(type, (context, handle) =>
      readKeyProtection(context, handle, valueAttribute),
    );
  }
}
