/**
 * Operations about the server itself: Discover Versions, Query, Interop,
 * Log, RNG Retrieve, and Check.
 */
import { randomBytes } from "node:crypto";
import type { KmipItem, StructureItem } from "../../item.ts";
import {
  atLeast,
  type OperationContext,
  type ProtocolVersion,
  SUPPORTED_VERSIONS,
} from "../context.ts";
import { invalidField, KmipOperationError } from "../errors.ts";
import {
  bytes,
  child,
  children,
  enumItem,
  enumName,
  integerOf,
  struct,
  tag,
  text,
} from "../items.ts";
import { attributeScalar } from "../objects.ts";
import { requestObject, uidItem } from "./common.ts";

function versionItem(version: ProtocolVersion): KmipItem {
  return struct("ProtocolVersion", [
    { tag: tag("ProtocolVersionMajor"), type: "Integer", value: version.major },
    { tag: tag("ProtocolVersionMinor"), type: "Integer", value: version.minor },
  ]);
}

/** Discover Versions: the client's versions that the server supports, in the client's order. */
export async function discoverVersions(payload: StructureItem): Promise<KmipItem[]> {
  const supportedVersions = SUPPORTED_VERSIONS;
  const offered = children(payload, "ProtocolVersion");
  if (offered.length === 0) return supportedVersions.map(versionItem);
  const result: KmipItem[] = [];
  for (const item of offered) {
    if (item.type !== "Structure") throw invalidField("Protocol Version must be a Structure");
    const major = child(item, "ProtocolVersionMajor");
    const minor = child(item, "ProtocolVersionMinor");
    if (major === undefined || minor === undefined)
      throw invalidField("Protocol Version is incomplete");
    const version = { major: integerOf(major), minor: integerOf(minor) };
    if (supportedVersions.some((v) => v.major === version.major && v.minor === version.minor)) {
      result.push(versionItem(version));
    }
  }
  return result;
}

/** Identifies the server in Query responses. */
export const VENDOR_IDENTIFICATION = "Keyward";

const QUERY_OBJECT_TYPES = [
  "SymmetricKey",
  "PublicKey",
  "PrivateKey",
  "SecretData",
  "OpaqueObject",
  "Certificate",
];

/** Builds the Query operation over the list of operations a protocol version offers. */
export function makeQuery(operations: (version: ProtocolVersion) => readonly string[]) {
  return async (payload: StructureItem, context: OperationContext): Promise<KmipItem[]> => {
    const functions = children(payload, "QueryFunction").map(enumName);
    const result: KmipItem[] = [];
    if (functions.includes("QueryOperations")) {
      for (const operation of operations(context.version)) {
        result.push(enumItem("Operation", operation));
      }
    }
    if (functions.includes("QueryObjects")) {
      for (const objectType of QUERY_OBJECT_TYPES) result.push(enumItem("ObjectType", objectType));
    }
    if (functions.includes("QueryServerInformation")) {
      result.push(text("VendorIdentification", VENDOR_IDENTIFICATION));
      result.push(struct("ServerInformation", []));
    }
    if (functions.includes("QueryCapabilities") && atLeast(context.version, 1, 3)) {
      result.push(
        struct("CapabilityInformation", [
          enumItem("UnwrapMode", "NotProcessed"),
          enumItem("DestroyAction", "Deleted"),
          enumItem("ShreddingAlgorithm", "Unsupported"),
          enumItem("RNGMode", "NonSharedInstantiation"),
        ]),
      );
    }
    return result;
  };
}

/** Interop and Log take the client's notes and do nothing else. */
export async function acknowledge(): Promise<KmipItem[]> {
  return [];
}

/** The largest RNG Retrieve request, in bytes. */
export const MAX_RANDOM_BYTES = 1024 * 1024;

export async function rngRetrieve(payload: StructureItem): Promise<KmipItem[]> {
  const lengthItem = child(payload, "DataLength");
  if (lengthItem === undefined) throw invalidField("Data Length is missing");
  const length = integerOf(lengthItem);
  if (length <= 0 || length > MAX_RANDOM_BYTES) {
    throw invalidField(`Data Length must be from 1 to ${MAX_RANDOM_BYTES}`);
  }
  return [bytes("Data", randomBytes(length))];
}

/**
 * Check: fails with Incompatible Cryptographic Usage Mask when the object's
 * mask lacks a bit of the requested one. Usage limits and leases are not
 * tracked, so those checks always pass.
 */
export async function check(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const maskItem = child(payload, "CryptographicUsageMask");
  if (maskItem !== undefined) {
    const wanted = integerOf(maskItem);
    const mask = attributeScalar(object, "Cryptographic Usage Mask");
    if (typeof mask !== "number" || (mask & wanted) !== wanted) {
      throw new KmipOperationError(
        "IncompatibleCryptographicUsageMask",
        "Check failed: usage mask",
      );
    }
  }
  return [uidItem(object.uid)];
}
