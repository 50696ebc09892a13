/** Records of the device registry, stored as JSON behind the barrier under `devices/`. */

/** A device's place in its life cycle. `revoked` is final: the device must be deleted and registered again. */
export type DeviceState = "registered" | "enrolled" | "revoked";

/** An EC P-256 public key in JWK form (RFC 7517), to which the server encrypts the device's secrets. */
export interface EncryptionJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

/** An identity certificate the device may authenticate with. */
export interface IdentityCertificate {
  /** Serial number, lower-case hex without separators or leading zero bytes. */
  serial: string;
  /** The PKI mount that issued it, where it is verified and revoked. */
  mount: string;
  /** The certificate's notAfter, RFC 3339. */
  expiration: string;
}

/** A device, at `devices/registry/<name>`. */
export interface DeviceRecord {
  name: string;
  /** Random UUID fixed at creation, which re-enrolment keeps. */
  id: string;
  tags: Record<string, string>;
  groups: string[];
  state: DeviceState;
  /** Identity certificates that are unexpired and not superseded, oldest first. */
  certificates: IdentityCertificate[];
  encryptionKey?: EncryptionJwk;
  /** RFC 7638 thumbprint of `encryptionKey`, the `kid` of every value sealed to it. */
  encryptionKeyId?: string;
  /** SHA-256 (hex) of the device's outstanding bootstrap tokens, so they go with the device. */
  bootstrapTokens: string[];
  enrolledAt?: string;
  lastSeenAt?: string;
  revokedAt?: string;
  createdAt: string;
  updatedAt: string;
}

/** The registry's settings, at `devices/config`. */
export interface DevicesConfig {
  /** PKI mount whose role signs identity certificates. */
  pkiMount: string;
  pkiRole: string;
  /** Lifetime of identity certificates, or the role's TTL when absent. */
  identityTtlSeconds?: number;
}

/** A bootstrap token, at `devices/bootstrap-tokens/<SHA-256 of the token, hex>`. */
export interface BootstrapTokenRecord {
  /** SHA-256 of the token, hex. The token itself is returned once and never stored. */
  tokenSha256: string;
  device: string;
  /** The device's `id`, so a token outlives no deletion and re-creation of a device with the same name. */
  deviceId: string;
  createdAt: string;
  expiresAt: string;
  numUses: number;
  remainingUses: number;
}

/** Maps an identity certificate back to its device, at `devices/serials/<serial hex>`. */
export interface SerialRecord {
  device: string;
  deviceId: string;
}

/** A shared secret delivered to devices, at `devices/secrets/<name>`. */
export interface SharedSecretRecord {
  name: string;
  /** Rises by one at each rotation. */
  version: number;
  /** Length of the random value in bytes. */
  length: number;
  encoding: SecretEncoding;
  /** The audience: devices in any of these groups, and the named devices. */
  groups: string[];
  devices: string[];
  /** The current value, base64. */
  value: string;
  createdAt: string;
  updatedAt: string;
  rotatedAt: string;
}

export const SECRET_ENCODINGS = ["base64", "hex"] as const;
export type SecretEncoding = (typeof SECRET_ENCODINGS)[number];
