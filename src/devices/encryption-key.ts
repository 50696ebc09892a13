import { createPublicKey } from "node:crypto";
import { invalidField } from "../errors.ts";
import { isCanonicalBase64url } from "../util/base64.ts";
import { encryptionKeyId } from "./sealed.ts";
import type { EncryptionJwk } from "./types.ts";

/** Length of a P-256 coordinate in unpadded base64url: 32 bytes. */
const COORDINATE_LENGTH = 43;

/**
 * Checks a device's encryption key as a request sends it: a JWK object
 * `{kty: "EC", crv: "P-256", x, y}` without `d`, whose point lies on the
 * curve. Returns the key and its RFC 7638 thumbprint. Throws
 * `invalid_field` naming `field` or one of its members.
 */
export async function checkEncryptionKey(
  value: unknown,
  field = "encryption_key",
): Promise<{ jwk: EncryptionJwk; keyId: string }> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidField(field, `"${field}" must be a JWK object {kty: "EC", crv: "P-256", x, y}`);
  }
  const member = value as Record<string, unknown>;
  if (Object.hasOwn(member, "d")) {
    throw invalidField(
      `${field}.d`,
      `"${field}" must be a public key; remove the private member "d" and keep the private key on the device`,
    );
  }
  if (member.kty !== "EC") throw invalidField(`${field}.kty`, `"${field}.kty" must be "EC"`);
  if (member.crv !== "P-256") throw invalidField(`${field}.crv`, `"${field}.crv" must be "P-256"`);
  for (const coordinate of ["x", "y"] as const) {
    const text = member[coordinate];
    if (
      typeof text !== "string" ||
      text.length !== COORDINATE_LENGTH ||
      !isCanonicalBase64url(text)
    ) {
      throw invalidField(
        `${field}.${coordinate}`,
        `"${field}.${coordinate}" must be 32 bytes in unpadded base64url (43 characters)`,
      );
    }
  }
  const jwk: EncryptionJwk = {
    kty: "EC",
    crv: "P-256",
    x: member.x as string,
    y: member.y as string,
  };
  try {
    createPublicKey({ key: { ...jwk }, format: "jwk" });
  } catch {
    throw invalidField(field, `"${field}" is not a point on the P-256 curve`);
  }
  return { jwk, keyId: await encryptionKeyId(jwk) };
}
