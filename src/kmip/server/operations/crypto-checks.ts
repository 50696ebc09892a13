/**
 * Checks and request readers shared by the cryptographic operations: state,
 * usage mask, usage limits and protection dates, and the Data and
 * algorithm of a request.
 */
import type { StructureItem } from "../../item.ts";
import { enumerationForTag } from "../../tags.ts";
import type { OperationContext } from "../context.ts";
import type { CryptoParameters } from "../crypto-params.ts";
import { KmipOperationError, wrongState } from "../errors.ts";
import {
  bytesOf,
  child,
  longInteger,
  optionalBytes,
  optionalEnum,
  requireChild,
  struct,
  tag,
} from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import { attributeScalar, findAttribute, withAttributes } from "../objects.ts";
import { requireActive, requireUsableForProcessing, requireUsage } from "./common.ts";

export function checkCreateUse(object: KmipObject, use: string, now: bigint): void {
  requireActive(object);
  const stop = attributeScalar(object, "Protect Stop Date");
  if (typeof stop === "bigint" && stop <= now)
    throw wrongState("the object's Protect Stop Date has passed");
  // KMIP makes an object Deactivated when its Deactivation Date passes, and
  // a Deactivated object protects no new data, even while the stored State
  // still reads Active. NOTE: the State changes only at the object's next
  // write, so Get Attributes may show Active until then.
  const deactivation = attributeScalar(object, "Deactivation Date");
  if (typeof deactivation === "bigint" && deactivation <= now)
    throw wrongState("the object's Deactivation Date has passed, so it may only process data");
  requireUsage(object, use);
}

/**
 * Counts a use against the object's Usage Limits (bytes of data, or one per
 * operation) and stores the remaining count. A use beyond the limit is denied.
 */
export async function consumeUsage(
  object: KmipObject,
  dataLength: number,
  context: OperationContext,
): Promise<void> {
  const limits = findAttribute(object, "Usage Limits");
  if (limits === undefined || limits.value.type !== "Structure") return;
  const total = child(limits.value, "UsageLimitsTotal");
  const count = child(limits.value, "UsageLimitsCount") ?? total;
  if (count === undefined || count.type !== "LongInteger") return;
  const unit = optionalEnum(limits.value, "UsageLimitsUnit") ?? "Object";
  const amount = BigInt(unit === "Byte" ? dataLength : 1);
  if (amount > count.value) {
    throw new KmipOperationError("PermissionDenied", "the object's usage limit is exhausted");
  }
  const remaining = longInteger("UsageLimitsCount", count.value - amount);
  const countTag = tag("UsageLimitsCount");
  const children = limits.value.value.filter((item) => item.tag !== countTag);
  const value = struct("AttributeValue", [...children, remaining]);
  await context.store.put(withAttributes(object, context.now, [{ name: "Usage Limits", value }]));
}

export function checkProcessUse(object: KmipObject, use: string, now: bigint): void {
  requireUsableForProcessing(object);
  const start = attributeScalar(object, "Process Start Date");
  if (typeof start === "bigint" && start > now)
    throw wrongState("the object's Process Start Date is in the future");
  requireUsage(object, use);
}

export function algorithmOf(object: KmipObject, parameters: CryptoParameters): string {
  const stored = attributeScalar(object, "Cryptographic Algorithm");
  if (typeof stored === "number") {
    return enumerationForTag(tag("CryptographicAlgorithm"))?.byValue.get(stored) ?? "Unknown";
  }
  return parameters.cryptographicAlgorithm ?? "AES";
}

export function data(payload: StructureItem): Buffer {
  return Buffer.from(bytesOf(requireChild(payload, "Data")));
}

export function optionalBuffer(payload: StructureItem, name: string): Buffer | undefined {
  const value = optionalBytes(payload, name);
  return value === undefined ? undefined : Buffer.from(value);
}

export function rejectStreaming(payload: StructureItem): void {
  if (
    child(payload, "InitIndicator") !== undefined ||
    child(payload, "CorrelationValue") !== undefined
  ) {
    throw new KmipOperationError(
      "FeatureNotSupported",
      "streaming cryptographic operations are not supported",
    );
  }
}

/** Maps a KMIP Hashing Algorithm name ("SHA_256", "SHA3_256") to node's name. */
export function nodeHash(name: string | undefined, fallback = "sha256"): string {
  if (name === undefined) return fallback;
  const match = /^SHA(3)?_(\d+)$/.exec(name);
  if (match === null) {
    if (name === "SHA_1" || name === "SHA1") return "sha1";
    throw new KmipOperationError("InvalidField", `hashing algorithm ${name} is not supported`);
  }
  return match[1] === undefined
    ? match[2] === "1"
      ? "sha1"
      : `sha${match[2]}`
    : `sha3-${match[2]}`;
}
