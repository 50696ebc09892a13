/**
 * Operations that create objects and move them through the KMIP key
 * lifecycle (the NIST SP 800-57 states): Create, Register, Activate, Revoke
 * and Destroy.
 *
 * Activate, or an Activation Date that has passed, moves Pre-Active to
 * Active. Revoke for a reason other than compromise moves Pre-Active or
 * Active to Deactivated. Revoke for key or CA compromise moves any state
 * before destruction to Compromised. Destroy moves Pre-Active and
 * Deactivated to Destroyed, and Compromised to Destroyed Compromised, so an
 * Active object must be revoked before it can be destroyed.
 */
import { randomBytes } from "node:crypto";
import type { AesKeyBytes } from "../../../hsm/aes-gcm.ts";
import type { KmipItem, StructureItem } from "../../item.ts";
import type { KmipAttribute } from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { invalidField, KmipOperationError, wrongState } from "../errors.ts";
import { generatesInHsm, hsmKeyAttributes, hsmKeys, inHsm } from "../hsm-objects.ts";
import {
  asStructure,
  child,
  dateTimeOf,
  enumItem,
  enumName,
  integerOf,
  optionalEnum,
  optionalInteger,
  tag,
} from "../items.ts";
import { hsmKeyContent, symmetricKeyContent } from "../material.ts";
import { dateAttribute, enumAttribute, stateOf, withAttributes } from "../objects.ts";
import { checkRegisteredKey } from "../register-checks.ts";
import { requestObject, requireUniqueNames, uidItem } from "./common.ts";
import { initialAttributes, RANDOM_NUMBER_GENERATOR, requestAttributes } from "./new-object.ts";

/** Symmetric algorithms Create generates keys for, with the lengths in bits each accepts. */
const SYMMETRIC_LENGTHS: Readonly<Record<string, (bits: number) => boolean>> = {
  // Two- and three-key Triple DES: 16 or 24 bytes with parity bits, named by their effective 112 or 168 bits.
  DES3: (bits) => bits === 112 || bits === 168 || bits === 128 || bits === 192,
  AES: (bits) => bits === 128 || bits === 192 || bits === 256,
  ChaCha20: (bits) => bits === 256,
  HMAC_SHA1: (bits) => bits >= 80 && bits % 8 === 0 && bits <= 4096,
  HMAC_SHA224: (bits) => bits >= 112 && bits % 8 === 0 && bits <= 4096,
  HMAC_SHA256: (bits) => bits >= 128 && bits % 8 === 0 && bits <= 4096,
  HMAC_SHA384: (bits) => bits >= 192 && bits % 8 === 0 && bits <= 4096,
  HMAC_SHA512: (bits) => bits >= 256 && bits % 8 === 0 && bits <= 4096,
};

/** Returns the bytes of key material for a length in bits; Triple DES keys carry parity bits. */
function keyBytes(algorithm: string, lengthBits: number): number {
  if (algorithm !== "DES3") return lengthBits / 8;
  return lengthBits === 112 || lengthBits === 128 ? 16 : 24;
}

function requestedLength(attributes: readonly KmipAttribute[]): number | undefined {
  const length = attributes.find((attribute) => attribute.name === "Cryptographic Length");
  return length === undefined ? undefined : integerOf(length.value);
}

function requestedAlgorithm(attributes: readonly KmipAttribute[]): string | undefined {
  const algorithm = attributes.find((attribute) => attribute.name === "Cryptographic Algorithm");
  if (algorithm === undefined) return undefined;
  return enumName({ ...algorithm.value, tag: tag("CryptographicAlgorithm") } as KmipItem);
}

export async function create(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const objectType = optionalEnum(payload, "ObjectType");
  if (objectType !== "SymmetricKey") {
    throw new KmipOperationError(
      "InvalidObjectType",
      `Create makes Symmetric Keys only; use Create Key Pair or Register for ${objectType ?? "other objects"}`,
    );
  }
  const attributes = requestAttributes(payload, "TemplateAttribute", "Attributes");
  const algorithm = requestedAlgorithm(attributes);
  const length = requestedLength(attributes);
  if (algorithm === undefined || length === undefined) {
    throw new KmipOperationError(
      "InvalidField",
      "Create needs the Cryptographic Algorithm and Cryptographic Length attributes",
    );
  }
  const valid = SYMMETRIC_LENGTHS[algorithm];
  if (valid === undefined) {
    throw new KmipOperationError("InvalidField", `cannot generate ${algorithm} keys`);
  }
  if (!valid(length)) {
    throw new KmipOperationError(
      "InvalidField",
      `${length} bits is not a valid ${algorithm} key length`,
    );
  }
  const byteLength = keyBytes(algorithm, length);
  const quantumSafe = attributes.find((attribute) => attribute.name === "Quantum Safe");
  // Grover's algorithm halves a symmetric key's strength, so only 256-bit AES keys count as quantum safe.
  if (quantumSafe?.value.value === true && !(algorithm === "AES" && length === 256)) {
    throw new KmipOperationError("GeneralFailure", "a quantum-safe key needs AES with 256 bits");
  }
  await requireUniqueNames(context, attributes);
  if (generatesInHsm(context, attributes)) {
    return createInHsm(algorithm, length, attributes, context);
  }
  const content = symmetricKeyContent(algorithm, randomBytes(byteLength), length);
  const uid = context.store.newUid();
  await context.store.put({
    uid,
    objectType,
    attributes: [
      ...initialAttributes(uid, objectType, attributes, content, context.now),
      RANDOM_NUMBER_GENERATOR,
    ],
    content,
  });
  context.idPlaceholder = uid;
  return [enumItem("ObjectType", objectType), uidItem(uid)];
}

/**
 * Generates a Create's key in the HSM as a non-extractable AES key (see
 * hsm-objects.ts). The HSM generates AES keys only, so another algorithm
 * with Extractable false gets Feature Not Supported on a server with an HSM.
 */
async function createInHsm(
  algorithm: string,
  length: number,
  attributes: readonly KmipAttribute[],
  context: OperationContext,
): Promise<KmipItem[]> {
  if (algorithm !== "AES") {
    throw new KmipOperationError(
      "FeatureNotSupported",
      `keys with Extractable false are generated in the HSM, which makes AES keys only, not ${algorithm}`,
    );
  }
  const keyAttributes = hsmKeyAttributes(attributes);
  const uid = context.store.newUid();
  const keys = await hsmKeys(context);
  const hsmObject = await inHsm(() => keys.generateAes(uid, (length / 8) as AesKeyBytes));
  const content = hsmKeyContent("SymmetricKey", algorithm, length);
  await context.store.put({
    uid,
    objectType: "SymmetricKey",
    attributes: initialAttributes(uid, "SymmetricKey", keyAttributes, content, context.now),
    content,
    hsmObject,
  });
  context.idPlaceholder = uid;
  return [enumItem("ObjectType", "SymmetricKey"), uidItem(uid)];
}

/** Object types Register stores, by the tag of their structure. */
const REGISTRABLE = [
  "SymmetricKey",
  "SecretData",
  "OpaqueObject",
  "PrivateKey",
  "PublicKey",
  "Certificate",
  "SplitKey",
];

export async function register(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const objectType = optionalEnum(payload, "ObjectType");
  if (objectType === undefined) throw invalidField("Object Type is missing");
  if (!REGISTRABLE.includes(objectType)) {
    throw new KmipOperationError("InvalidObjectType", `cannot register a ${objectType}`);
  }
  const content = child(payload, objectType);
  if (content === undefined) throw invalidField(`the ${objectType} structure is missing`);
  asStructure(content, objectType);
  const attributes = requestAttributes(payload, "TemplateAttribute", "Attributes");
  await requireUniqueNames(context, attributes);
  const uid = context.store.newUid();
  const object = {
    uid,
    objectType,
    attributes: initialAttributes(uid, objectType, attributes, content, context.now),
    content,
  };
  checkRegisteredKey(object);
  await context.store.put(object);
  context.idPlaceholder = uid;
  return [uidItem(uid)];
}

export async function activate(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const state = stateOf(object);
  if (state !== "PreActive") wrongStateFor("Activate", state);
  await context.store.put(
    withAttributes(object, context.now, [
      enumAttribute("State", "Active"),
      dateAttribute("Activation Date", context.now),
    ]),
  );
  return [uidItem(object.uid)];
}

function wrongStateFor(operation: string, state: string): never {
  throw wrongState(`${operation} is not allowed on an object in state ${state}`);
}

const COMPROMISE_REASONS = new Set(["KeyCompromise", "CACompromise"]);

export async function revoke(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const reasonStructure = asStructure(child(payload, "RevocationReason"), "RevocationReason");
  const code = optionalEnum(reasonStructure, "RevocationReasonCode");
  if (code === undefined) throw invalidField("Revocation Reason Code is missing");
  const state = stateOf(object);
  const changes: KmipAttribute[] = [
    { name: "Revocation Reason", value: { ...reasonStructure, tag: tag("AttributeValue") } },
  ];
  if (COMPROMISE_REASONS.has(code)) {
    if (state === "Destroyed" || state === "DestroyedCompromised") wrongStateFor("Revoke", state);
    const occurrence = child(payload, "CompromiseOccurrenceDate");
    changes.push(
      enumAttribute("State", "Compromised"),
      dateAttribute("Compromise Date", context.now),
    );
    changes.push(
      dateAttribute(
        "Compromise Occurrence Date",
        occurrence === undefined ? context.now : dateTimeOf(occurrence),
      ),
    );
  } else {
    if (state !== "Active" && state !== "PreActive") wrongStateFor("Revoke", state);
    changes.push(
      enumAttribute("State", "Deactivated"),
      dateAttribute("Deactivation Date", context.now),
    );
  }
  await context.store.put(withAttributes(object, context.now, changes));
  return [uidItem(object.uid)];
}

export async function destroy(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const state = stateOf(object);
  let next: string;
  if (state === "PreActive" || state === "Deactivated") next = "Destroyed";
  else if (state === "Compromised") next = "DestroyedCompromised";
  else wrongStateFor("Destroy", state);
  const destroyed = withAttributes(object, context.now, [
    enumAttribute("State", next),
    dateAttribute("Destroy Date", context.now),
  ]);
  // The token objects go first: if the record's write then fails, a repeated
  // Destroy finds no token object, which is not an error.
  // NOTE: a batch with Undo that fails after this item restores the record,
  // but not the destroyed token objects.
  const hsmObject = object.hsmObject;
  if (hsmObject !== undefined) {
    const keys = await hsmKeys(context);
    await inHsm(() => keys.destroy(hsmObject));
  }
  const { content: _erased, hsmObject: _reference, ...metadata } = destroyed;
  await context.store.put(metadata);
  return [uidItem(object.uid)];
}

/** Reads an optional Integer child, for the operations that take counts. */
export function optionalCount(payload: StructureItem, name: string): number | undefined {
  const value = optionalInteger(payload, name);
  if (value !== undefined && value < 0) throw invalidField(`${name} must not be negative`);
  return value;
}
