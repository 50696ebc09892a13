/**
 * The attributes the server gives a new object when the client did not
 * send them: Fresh, Lease Time, Sensitive, Extractable, Short Unique
 * Identifier and Protection Storage Mask, and the attributes a registered
 * certificate's content defines.
 */
import { createHash } from "node:crypto";
import type { KmipItem } from "../item.ts";
import type { KmipAttribute } from "./attributes.ts";
import { certificateAttributes } from "./certificate-attributes.ts";
import { bytes } from "./items.ts";
import type { KmipObject } from "./object-store.ts";
import { findAttribute, replaceAttribute, scalarAttribute } from "./objects.ts";

/**
 * The Lease Time of new objects, in seconds.
 * NOTE: Keyward does not implement Obtain Lease and never ends a lease, so
 * this value only informs clients how long they may cache the object.
 */
export const DEFAULT_LEASE_SECONDS = 3600;

/** Object types with key material or certificates: the "cryptographic objects" of KMIP. */
const CRYPTOGRAPHIC_OBJECTS = new Set([
  "SymmetricKey",
  "PublicKey",
  "PrivateKey",
  "SplitKey",
  "SecretData",
  "Certificate",
  "PGPKey",
]);

/** Object types whose content is secret, for which Sensitive and Extractable apply. */
const SECRET_OBJECTS = new Set(["SymmetricKey", "PrivateKey", "SplitKey", "SecretData"]);

/** Protection Storage Mask bit for storage in software (Keyward's barrier-encrypted storage). */
const SOFTWARE_STORAGE = 0x1;

function withDefault(object: KmipObject, attribute: KmipAttribute): KmipObject {
  if (findAttribute(object, attribute.name) !== undefined) return object;
  return replaceAttribute(object, attribute.name, attribute);
}

/**
 * Adds the server's defaults to a new object. Attributes the client sent
 * are kept: a client may register a key with Fresh or Sensitive set.
 * Run before withProtectionHistory, which derives Always Sensitive and
 * Never Extractable from Sensitive and Extractable.
 */
export function withServerDefaults(object: KmipObject, content: KmipItem | undefined): KmipObject {
  // The Short Unique Identifier is the SHA-256 digest of the Unique Identifier.
  let updated = withDefault(object, {
    name: "Short Unique Identifier",
    value: bytes("AttributeValue", createHash("sha256").update(object.uid).digest()),
  });
  // NOTE: an object kept in an HSM is in hardware, but it gets Software too.
  updated = withDefault(
    updated,
    scalarAttribute("Protection Storage Mask", "Integer", SOFTWARE_STORAGE),
  );
  if (CRYPTOGRAPHIC_OBJECTS.has(object.objectType)) {
    updated = withDefault(updated, scalarAttribute("Fresh", "Boolean", true));
    updated = withDefault(
      updated,
      scalarAttribute("Lease Time", "Interval", DEFAULT_LEASE_SECONDS),
    );
  }
  if (SECRET_OBJECTS.has(object.objectType)) {
    updated = withDefault(updated, scalarAttribute("Sensitive", "Boolean", false));
    updated = withDefault(updated, scalarAttribute("Extractable", "Boolean", true));
  }
  if (object.objectType === "Certificate" && content !== undefined) {
    const clientNames = new Set(object.attributes.map((attribute) => attribute.name));
    const derived = certificateAttributes(content).filter(
      (attribute) => !clientNames.has(attribute.name),
    );
    updated = { ...updated, attributes: [...updated.attributes, ...derived] };
  }
  return updated;
}
