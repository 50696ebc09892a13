import { randomBytes } from "../../crypto/random.ts";
import type { KeyTypeDefinition } from "./definition.ts";

/** Default size of an `hmac` key in bytes, as Vault uses. */
export const DEFAULT_HMAC_KEY_SIZE = 32;

/** Smallest and largest `hmac` key sizes in bytes, as Vault allows. */
export const MIN_HMAC_KEY_SIZE = 32;
export const MAX_HMAC_KEY_SIZE = 512;

/** The `hmac` key type: only an HMAC key, of `keySize` bytes, and no other secret. */
export const HMAC_KEY_TYPE: KeyTypeDefinition = {
  type: "hmac",
  derivation: false,
  convergentEncryption: false,
  exportKinds: [],
  secretExportFormat: "none",
  generateVersion: (keySize) => ({
    hmacKey: randomBytes(keySize ?? DEFAULT_HMAC_KEY_SIZE).toString("base64"),
  }),
  checkSecret() {
    throw new Error("hmac keys carry no secret besides the HMAC key");
  },
};
