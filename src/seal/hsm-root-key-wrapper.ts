import { timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import { KeywardError } from "../errors.ts";
import { HsmAesKey } from "../hsm/aes-gcm.ts";
import { HsmToken } from "../hsm/token.ts";
import type { RootKeyWrapper } from "./wrapped-root-key.ts";

/*
 * The root key wrapper over a PKCS#11 token. It is the only seal file that
 * loads the PKCS#11 addon, so a server without a PKCS#11 seal never loads it.
 */

export interface HsmRootKeyWrapperOptions {
  /** Path of the PKCS#11 library. */
  library: string;
  tokenLabel: string;
  /** The user PIN; never logged. */
  pin: string;
  /** The label of the AES-256 wrapping key, found or created in the token. */
  keyLabel: string;
  logger?: Logger;
}

/**
 * Opens the token (load the library, find the token, log in) and returns a
 * wrapper over its AES key. Throws `hsm_unavailable` or `hsm_login_failed`
 * at once, so a server with a wrong PIN or a missing token fails to start.
 */
export async function openHsmRootKeyWrapper(
  options: HsmRootKeyWrapperOptions,
): Promise<RootKeyWrapper> {
  const token = await HsmToken.open({
    library: options.library,
    tokenLabel: options.tokenLabel,
    pin: options.pin,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  return new HsmRootKeyWrapper(token, options.keyLabel, options.logger);
}

/** The root key wrapper over an AES-256 key in a PKCS#11 token, used with CKM_AES_GCM. */
class HsmRootKeyWrapper implements RootKeyWrapper {
  readonly keyLabel: string;
  readonly #token: HsmToken;
  readonly #logger: Logger | undefined;

  constructor(token: HsmToken, keyLabel: string, logger: Logger | undefined) {
    this.#token = token;
    this.keyLabel = keyLabel;
    this.#logger = logger;
  }

  get location(): string {
    return this.#token.description;
  }

  async wrap(
    rootKey: Uint8Array,
    aad: Uint8Array,
  ): Promise<{ iv: Buffer; ciphertext: Buffer; created: boolean }> {
    let key = await this.#findKey();
    const created = key === undefined;
    if (key === undefined) {
      key = await HsmAesKey.generate(this.#token, this.keyLabel);
      this.#logger?.info(
        { tokenLabel: this.#token.tokenLabel, keyLabel: this.keyLabel },
        "generated the root key wrapping key in the HSM",
      );
    } else {
      await this.#requirePermissions(key, ["encrypt", "decrypt"]);
      await this.#warnIfExposed(key);
    }
    const { iv, ciphertext } = await key.encrypt(rootKey, aad);
    // Nothing is stored yet. A root key that the HSM wraps but cannot unwrap
    // would leave an initialised storage that no server can ever unseal.
    await this.#checkUnwrap(key, rootKey, iv, ciphertext, aad);
    return { iv, ciphertext, created };
  }

  async unwrap(iv: Buffer, ciphertext: Buffer, aad: Uint8Array): Promise<Buffer> {
    const key = await this.#findKey();
    if (key === undefined) {
      throw new KeywardError(
        "hsm_key_not_found",
        `${this.location} has no AES key labelled "${this.keyLabel}", which wraps the root key: check seal_pkcs11_key_label and seal_pkcs11_token_label, or whether the key was deleted from the HSM`,
      );
    }
    await this.#requirePermissions(key, ["decrypt"]);
    return key.decrypt({ iv, ciphertext }, aad);
  }

  close(): Promise<void> {
    return this.#token.close();
  }

  /**
   * Returns the wrapping key, or undefined when the token has none. A key
   * of the label that is not AES-256, or several keys with it, give
   * `hsm_key_not_found` with the reason, instead of a bare `hsm_failure`.
   */
  async #findKey(): Promise<HsmAesKey | undefined> {
    try {
      return await HsmAesKey.find(this.#token, this.keyLabel);
    } catch (error) {
      if (error instanceof KeywardError && error.code === "hsm_failure") {
        throw this.#unusableKey(error.message, error);
      }
      throw error;
    }
  }

  /** Throws `hsm_key_not_found` when the token does not allow `key` one of the `needed` uses. */
  async #requirePermissions(key: HsmAesKey, needed: Array<"encrypt" | "decrypt">): Promise<void> {
    const permissions = await key.permissions();
    const forbidden = needed
      .filter((use) => !permissions[use])
      .map((use) => `CKA_${use.toUpperCase()}`);
    if (forbidden.length === 0) return;
    throw this.#unusableKey(`its ${forbidden.join(" and ")} attribute is false`);
  }

  /** Decrypts the new wrapped root key and compares it with `rootKey`. Throws `hsm_key_not_found` on any difference. */
  async #checkUnwrap(
    key: HsmAesKey,
    rootKey: Uint8Array,
    iv: Buffer,
    ciphertext: Buffer,
    aad: Uint8Array,
  ): Promise<void> {
    let unwrapped: Buffer;
    try {
      unwrapped = await key.decrypt({ iv, ciphertext }, aad);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw this.#unusableKey(`it fails to decrypt what it encrypted (${reason})`, error);
    }
    try {
      if (unwrapped.length !== rootKey.length || !timingSafeEqual(unwrapped, rootKey)) {
        throw this.#unusableKey("it decrypts what it encrypted to other bytes");
      }
    } finally {
      unwrapped.fill(0);
    }
  }

  #unusableKey(reason: string, cause?: unknown): KeywardError {
    return new KeywardError(
      "hsm_key_not_found",
      `the AES key labelled "${this.keyLabel}" in ${this.location} cannot wrap and unwrap the root key, because ${reason}: set seal_pkcs11_key_label to a key that may encrypt and decrypt, or to a new label so that Keyward creates one`,
      { cause },
    );
  }

  /** Logs a warning when a key found in the token, made outside Keyward, can leave it. */
  async #warnIfExposed(key: HsmAesKey): Promise<void> {
    const protection = await key.protection();
    if (protection.sensitive && !protection.extractable && !protection.valueReadable) return;
    this.#logger?.warn(
      { tokenLabel: this.#token.tokenLabel, keyLabel: this.keyLabel, ...protection },
      "the HSM key that wraps the root key can leave the HSM (it is not sensitive, or it is extractable); replace it with a sensitive, non-extractable key",
    );
  }
}
