import { KeywardError } from "../../../errors.ts";
import type { HsmToken } from "../../../hsm/token.ts";
import type { HsmObjectRef, ManagedKey } from "../../../keys/types.ts";
import type { Logger } from "../types.ts";
import type { HsmKeyObjects } from "./key-objects.ts";

/**
 * The HSM a transit mount keeps its HSM-held keys in. The PKCS#11 code is
 * imported on first use, so this file, and with it the transit engine,
 * loads no native code on a server without an HSM.
 */
export class TransitHsm {
  readonly #token: HsmToken;
  readonly #mount: string;
  #objects: Promise<HsmKeyObjects> | undefined;

  constructor(token: HsmToken, mount: string) {
    this.#token = token;
    this.#mount = mount;
  }

  /** "token "LABEL" of LIBRARY", for messages. */
  get description(): string {
    return this.#token.description;
  }

  /** Returns the key objects of the token, loading the PKCS#11 code on the first call. */
  objects(): Promise<HsmKeyObjects> {
    this.#objects ??= import("./key-objects.ts").then(
      (module) => new module.HsmKeyObjects(this.#token),
      (error: unknown) => {
        this.#objects = undefined;
        throw error;
      },
    );
    return this.#objects;
  }

  /**
   * Returns the CKA_LABEL of a key version's objects: `keyward/<mount>/<key>/v<version>`.
   * Keyward finds the objects by label and a random CKA_ID. The label also
   * shows an operator, in the HSM's own tools, which key an object belongs to.
   */
  label(name: string, version: number): string {
    return `keyward/${this.#mount}/${name}/v${version}`;
  }

  /**
   * Destroys the objects of `references`, logging each. A failure is
   * logged with the labels left in the HSM and does not throw, because the
   * key change it follows is already stored.
   */
  async discard(
    references: readonly HsmObjectRef[],
    logger: Logger,
    fields: Record<string, unknown>,
  ): Promise<void> {
    if (references.length === 0) return;
    let objects: HsmKeyObjects;
    try {
      objects = await this.objects();
    } catch (error) {
      logLeftObjects(logger, fields, references, error);
      return;
    }
    for (const [index, reference] of references.entries()) {
      try {
        const destroyed = await objects.destroy(reference);
        logger.info(
          { ...fields, hsmLabel: reference.label, hsmId: reference.id, destroyed },
          "HSM key objects destroyed",
        );
      } catch (error) {
        logLeftObjects(logger, fields, references.slice(index), error);
        return;
      }
    }
  }
}

function logLeftObjects(
  logger: Logger,
  fields: Record<string, unknown>,
  references: readonly HsmObjectRef[],
  error: unknown,
): void {
  logger.error(
    { ...fields, err: error, hsmObjects: references },
    "failed to destroy HSM key objects: delete them with the HSM's own tools",
  );
}

/**
 * Returns the mount's HSM, or throws `hsm_not_configured` (naming the
 * field `hsm`) when the server has none.
 */
export function requireHsm(hsm: TransitHsm | undefined, key?: ManagedKey): TransitHsm {
  if (hsm !== undefined) return hsm;
  const subject =
    key === undefined ? "hsm=true needs an HSM" : `key "${key.name}" is held in an HSM (hsm=true)`;
  throw new KeywardError(
    "hsm_not_configured",
    `${subject}, but this server has none configured: start it with --hsm-pkcs11-library, --hsm-pkcs11-token-label and a PIN (see docs/hsm.md)`,
    { field: "hsm" },
  );
}

/** Returns the HSM reference of a version of an HSM-held key; a missing one means the stored key is broken. */
export function hsmObjectOf(
  key: ManagedKey,
  version: { version: number; hsmObject?: HsmObjectRef },
): HsmObjectRef {
  if (version.hsmObject !== undefined) return version.hsmObject;
  throw new KeywardError("internal", "internal error", {
    details: { key: key.name, version: version.version, reason: "HSM object reference missing" },
  });
}
