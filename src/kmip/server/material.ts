/**
 * Key material inside KMIP object structures: building a Key Block, reading
 * the bytes back for a cryptographic operation, and converting between the
 * key formats Get offers (Raw, Transparent Symmetric Key, PKCS#1, PKCS#8,
 * X.509 SubjectPublicKeyInfo).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { checkKeyObject, importSpki } from "../../crypto/key-safety.ts";
import type { KmipItem, StructureItem } from "../item.ts";
import { KmipOperationError } from "./errors.ts";
import {
  asStructure,
  bytes,
  bytesOf,
  child,
  enumItem,
  enumName,
  integer,
  optionalEnum,
  struct,
  tag,
} from "./items.ts";
import type { KmipObject } from "./object-store.ts";

/** Builds a Key Block with the material in the given format. */
export function keyBlock(
  format: string,
  material: KmipItem,
  algorithm: string,
  lengthBits: number,
): StructureItem {
  return struct("KeyBlock", [
    enumItem("KeyFormatType", format),
    struct("KeyValue", [material]),
    enumItem("CryptographicAlgorithm", algorithm),
    integer("CryptographicLength", lengthBits),
  ]);
}

export function symmetricKeyContent(
  algorithm: string,
  material: Uint8Array,
  lengthBits = material.length * 8,
): StructureItem {
  return struct("SymmetricKey", [
    keyBlock("Raw", bytes("KeyMaterial", material), algorithm, lengthBits),
  ]);
}

/**
 * Builds the content of a key generated in the HSM: a Key Block with the
 * algorithm and length but no Key Value, because the record keeps only a
 * reference to the token object.
 */
export function hsmKeyContent(
  objectType: "SymmetricKey" | "PrivateKey",
  algorithm: string,
  lengthBits: number,
): StructureItem {
  return struct(objectType, [
    struct("KeyBlock", [
      enumItem("CryptographicAlgorithm", algorithm),
      integer("CryptographicLength", lengthBits),
    ]),
  ]);
}

/** Returns the Key Block of an object's content, or undefined for objects without one. */
export function keyBlockOf(content: KmipItem | undefined): StructureItem | undefined {
  if (content === undefined || content.type !== "Structure") return undefined;
  const block = child(content, "KeyBlock");
  return block?.type === "Structure" ? block : undefined;
}

function requireContent(object: KmipObject): KmipItem {
  // An HSM-held key's record has no key material, and the token never releases it.
  if (object.hsmObject !== undefined) {
    throw new KmipOperationError(
      "NotExtractable",
      "the object's key material is held in the HSM and never leaves it",
    );
  }
  if (object.content === undefined) {
    throw new KmipOperationError("ObjectDestroyed", "the object's key material was destroyed");
  }
  return object.content;
}

/** Reads the Key Format Type and Key Material item of an object's Key Block. */
export function keyMaterialOf(object: KmipObject): { format: string; material: KmipItem } {
  const block = keyBlockOf(requireContent(object));
  if (block === undefined) {
    throw new KmipOperationError("InvalidObjectType", "the object has no key block");
  }
  const format = optionalEnum(block, "KeyFormatType") ?? "Raw";
  const value = child(block, "KeyValue");
  if (value === undefined) {
    throw new KmipOperationError("KeyValueNotPresent", "the object's key value is absent");
  }
  if (value.type === "ByteString") {
    throw new KmipOperationError(
      "KeyCompressionTypeNotSupported",
      "wrapped keys are not supported",
    );
  }
  const material = child(asStructure(value, "KeyValue"), "KeyMaterial");
  if (material === undefined) {
    throw new KmipOperationError("KeyValueNotPresent", "the object's key material is absent");
  }
  return { format, material };
}

/** Returns the raw bytes of a symmetric key or secret. */
export function secretBytes(object: KmipObject): Buffer {
  const { format, material } = keyMaterialOf(object);
  if (material.type === "ByteString" && (format === "Raw" || format === "Opaque")) {
    return Buffer.from(material.value);
  }
  if (format === "TransparentSymmetricKey" && material.type === "Structure") {
    const key = child(material, "Key");
    if (key !== undefined) return Buffer.from(bytesOf(key));
  }
  throw new KmipOperationError(
    "KeyFormatTypeNotSupported",
    `key format ${format} cannot be used for this operation`,
  );
}

/** Returns the private key of an object as a node:crypto KeyObject. */
export function privateKeyOf(object: KmipObject): KeyObject {
  const { format, material } = keyMaterialOf(object);
  if (material.type !== "ByteString") {
    throw new KmipOperationError(
      "KeyFormatTypeNotSupported",
      `key format ${format} is not supported`,
    );
  }
  const der = Buffer.from(material.value);
  try {
    if (format === "PKCS_1") {
      return checkKeyObject(createPrivateKey({ key: der, format: "der", type: "pkcs1" }));
    }
    if (format === "PKCS_8") {
      return checkKeyObject(createPrivateKey({ key: der, format: "der", type: "pkcs8" }));
    }
    if (format === "ECPrivateKey") {
      return checkKeyObject(createPrivateKey({ key: der, format: "der", type: "sec1" }));
    }
  } catch {
    throw new KmipOperationError("CryptographicFailure", "the private key cannot be parsed");
  }
  throw new KmipOperationError(
    "KeyFormatTypeNotSupported",
    `key format ${format} is not supported`,
  );
}

/** Returns the public key of an object (a Public Key, or the public half of a Private Key). */
export function publicKeyOf(object: KmipObject): KeyObject {
  const hsmPublicKey = object.hsmObject?.publicKey;
  if (hsmPublicKey !== undefined) {
    return createPublicKey({
      key: Buffer.from(hsmPublicKey, "base64"),
      format: "der",
      type: "spki",
    });
  }
  if (object.objectType === "PrivateKey") return createPublicKey(privateKeyOf(object));
  const { format, material } = keyMaterialOf(object);
  if (material.type !== "ByteString") {
    throw new KmipOperationError(
      "KeyFormatTypeNotSupported",
      `key format ${format} is not supported`,
    );
  }
  const der = Buffer.from(material.value);
  try {
    if (format === "PKCS_1") {
      return checkKeyObject(createPublicKey({ key: der, format: "der", type: "pkcs1" }));
    }
    if (format === "X_509") return checkKeyObject(importSpki(der));
  } catch {
    throw new KmipOperationError("CryptographicFailure", "the public key cannot be parsed");
  }
  throw new KmipOperationError(
    "KeyFormatTypeNotSupported",
    `key format ${format} is not supported`,
  );
}

/** SHA-256 of the material bytes in the stored format, for the Digest attribute. */
export function materialDigest(content: KmipItem): { digest: Buffer; format: string } | undefined {
  const block = keyBlockOf(content);
  if (block !== undefined) {
    const value = child(block, "KeyValue");
    const material = value?.type === "Structure" ? child(value, "KeyMaterial") : undefined;
    if (material?.type !== "ByteString") return undefined;
    const formatItem = child(block, "KeyFormatType");
    const format = formatItem === undefined ? "Raw" : enumName(formatItem);
    return { digest: createHash("sha256").update(material.value).digest(), format };
  }
  return undefined;
}

/**
 * Returns the object's content in the requested Key Format Type, converting
 * where the formats hold the same key.
 */
export function contentInFormat(object: KmipObject, requested: string | undefined): KmipItem {
  const content = requireContent(object);
  if (requested === undefined) return content;
  const block = keyBlockOf(content);
  if (block === undefined) {
    throw new KmipOperationError("KeyFormatTypeNotSupported", "the object has no key block");
  }
  const { format, material } = keyMaterialOf(object);
  if (format === requested) return content;
  const converted = convertMaterial(object, format, material, requested);
  const formatTag = tag("KeyFormatType");
  const valueTag = tag("KeyValue");
  const newBlock = struct("KeyBlock", [
    enumItem("KeyFormatType", requested),
    struct("KeyValue", [converted]),
    ...block.value.filter((item) => item.tag !== formatTag && item.tag !== valueTag),
  ]);
  return { ...asStructure(content, "Object"), value: [newBlock] };
}

function convertMaterial(
  object: KmipObject,
  format: string,
  material: KmipItem,
  requested: string,
): KmipItem {
  if (object.objectType === "SymmetricKey") {
    const raw = secretBytes(object);
    if (requested === "Raw") return bytes("KeyMaterial", raw);
    if (requested === "TransparentSymmetricKey") {
      return struct("KeyMaterial", [bytes("Key", raw)]);
    }
  }
  if (material.type === "ByteString") {
    if (object.objectType === "PrivateKey") {
      const key = privateKeyOf(object);
      if (requested === "PKCS_8") {
        return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs8" }));
      }
      if (requested === "PKCS_1" && key.asymmetricKeyType === "rsa") {
        return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs1" }));
      }
      if (requested === "ECPrivateKey" && key.asymmetricKeyType === "ec") {
        return bytes("KeyMaterial", key.export({ format: "der", type: "sec1" }));
      }
    }
    if (object.objectType === "PublicKey") {
      const key = publicKeyOf(object);
      if (requested === "X_509") {
        return bytes("KeyMaterial", key.export({ format: "der", type: "spki" }));
      }
      if (requested === "PKCS_1" && key.asymmetricKeyType === "rsa") {
        return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs1" }));
      }
    }
  }
  throw new KmipOperationError(
    "KeyFormatTypeNotSupported",
    `key format ${format} cannot be converted to ${requested}`,
  );
}
