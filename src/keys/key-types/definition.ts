import type { AsymmetricKeySpec } from "../../crypto/asymmetric-keys.ts";
import type { HashAlgorithm } from "../../crypto/hash.ts";
import type { PssSaltLength, RsaSignaturePadding } from "../../crypto/rsa.ts";
import type { ExportKind, KeyType, KeyVersion } from "../types.ts";

/** The key material of one new version, or for an HSM-held key the reference to its HSM objects. */
export type VersionMaterial = Pick<KeyVersion, "secret" | "hmacKey" | "publicKeyPem" | "hsmObject">;

export interface EncryptParams {
  plaintext: Buffer;
  associatedData?: Buffer;
  /** The derivation context; present exactly when the key is derived. */
  context?: Buffer;
  /** True for convergent keys: the nonce is derived from the input. */
  convergent: boolean;
}

export interface DecryptParams {
  /** The bytes after `keyward:v<N>:`. */
  payload: Buffer;
  associatedData?: Buffer;
  context?: Buffer;
}

export type MarshalingAlgorithm = "asn1" | "jws";

export interface SignParams {
  input: Buffer;
  hashAlgorithm: HashAlgorithm;
  prehashed: boolean;
  signatureAlgorithm: RsaSignaturePadding;
  marshalingAlgorithm: MarshalingAlgorithm;
  saltLength: PssSaltLength;
  context?: Buffer;
}

export interface SignOutput {
  signature: Buffer;
  /** The public key that verifies the signature, when it is derived from a context. */
  publicKeyPem?: string;
}

export interface Encryptor {
  encrypt(version: KeyVersion, params: EncryptParams): Buffer;
  /** Throws `decryptionFailed()` for any payload that does not authenticate. */
  decrypt(version: KeyVersion, params: DecryptParams): Buffer;
}

export interface Signer {
  sign(version: KeyVersion, params: SignParams): SignOutput;
  verify(version: KeyVersion, params: SignParams, signature: Buffer): boolean;
}

/** Capabilities and material layout of one key type. */
export interface KeyTypeDefinition {
  readonly type: KeyType;
  /** Whether keys of this type may be created with `derived: true`. */
  readonly derivation: boolean;
  /** Whether keys of this type may use convergent encryption. */
  readonly convergentEncryption: boolean;
  /** Export kinds besides `hmac-key`, which every type has. */
  readonly exportKinds: readonly ExportKind[];
  /** Export format of `secret`: raw bytes in base64, PKCS#8 PEM, or none for keys without one. */
  readonly secretExportFormat: "base64" | "pkcs8-pem" | "none";
  /** The name shown beside each public key, as Vault's read endpoint does. */
  readonly publicKeyName?: string;
  /** The key pair algorithm of asymmetric types. */
  readonly asymmetricSpec?: AsymmetricKeySpec;
  /** Generates one version's material; `keySize` applies to `hmac` keys only. */
  generateVersion(keySize: number | undefined): VersionMaterial;
  /**
   * Throws a description of the first problem when `version`'s secret is not
   * this type's material (used on restored backups). `version.secret` is present.
   */
  checkSecret(version: KeyVersion): void;
  readonly encryptor?: Encryptor;
  readonly signer?: Signer;
}
