import { createPrivateKey, type KeyObject } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { requireTransit, type TransitResolver, transitDataSigner } from "./ca-transit.ts";
import { type DataSigner, keyObjectSigner } from "./data-signer.ts";
import {
  describePublicKey,
  importSigningKey,
  type KeySpec,
  publicKeyObject,
  type SigningKey,
} from "./key-pairs.ts";
import type { IssuerRecord, KeyRecord } from "./types.ts";

/** The signing key of an issuer: its signer, key type and, for a stored key, its WebCrypto form. */
export interface IssuerKey {
  signer: DataSigner;
  keySpec: KeySpec;
  /** The private key for WebCrypto; absent when a transit key signs for the issuer. */
  privateKey?: SigningKey;
}

/**
 * The signing keys of a mount's issuers. A stored key is imported into
 * node:crypto and WebCrypto once and cached for the life of this object,
 * which the engine rebuilds at every unseal. A key id names one key for
 * good, so a cached key never goes stale. A failed import is not cached.
 */
export class IssuerKeys {
  readonly #signingKeys = new Map<string, Promise<SigningKey>>();
  readonly #keyObjects = new Map<string, KeyObject>();
  readonly #transit: TransitResolver | undefined;

  constructor(transit?: TransitResolver) {
    this.#transit = transit;
  }

  /**
   * Returns the key that signs for `issuer`: its transit key, or `key`,
   * the stored key record it links to. `spki` is the issuer certificate's
   * public key. Throws `invalid_state` when Keyward has neither.
   */
  async keyFor(
    issuer: IssuerRecord,
    key: KeyRecord | undefined,
    spki: Uint8Array,
  ): Promise<IssuerKey> {
    if (issuer.transitKey && !issuer.keyId) {
      const transit = requireTransit(this.#transit, issuer.transitKey.mount);
      const spec = describePublicKey(publicKeyObject(spki), "certificate");
      return { signer: transitDataSigner(transit, issuer.transitKey, spec), keySpec: spec };
    }
    if (!key?.pkcs8) {
      throw new KeywardError(
        "invalid_state",
        `issuer "${issuer.name || issuer.id}" has no private key in Keyward, so it cannot sign`,
        { field: "issuer_ref" },
      );
    }
    const spec: KeySpec = { type: key.type, bits: key.bits };
    let signingKey = this.#signingKeys.get(key.id);
    if (!signingKey) {
      const imported = importSigningKey(Buffer.from(key.pkcs8, "base64"), spec);
      signingKey = imported;
      this.#signingKeys.set(key.id, imported);
      // A failed import is not cached, so the next request tries again.
      imported.catch(() => {
        if (this.#signingKeys.get(key.id) === imported) this.#signingKeys.delete(key.id);
      });
    }
    let keyObject: KeyObject;
    let privateKey: SigningKey;
    try {
      keyObject = this.#keyObjectOf(key.id, key.pkcs8);
      privateKey = await signingKey;
    } catch (error) {
      throw new KeywardError(
        "invalid_state",
        `the private key of issuer "${issuer.name || issuer.id}" cannot be used to sign; import a valid key for it`,
        { field: "issuer_ref", cause: error },
      );
    }
    return { signer: keyObjectSigner(keyObject, spec), keySpec: spec, privateKey };
  }

  #keyObjectOf(keyId: string, pkcs8: string): KeyObject {
    let keyObject = this.#keyObjects.get(keyId);
    if (!keyObject) {
      keyObject = createPrivateKey({
        key: Buffer.from(pkcs8, "base64"),
        format: "der",
        type: "pkcs8",
      });
      this.#keyObjects.set(keyId, keyObject);
    }
    return keyObject;
  }
}
