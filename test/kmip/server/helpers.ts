import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  bytes,
  child,
  children,
  dateTime,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";

export function newDispatcher(barrier = new MemoryBarrier()): KmipDispatcher {
  return new KmipDispatcher({ store: new KmipObjectStore(barrier) });
}

/** Builds a Request Message with one Batch Item per operation. */
export function requestMessage(
  version: [number, number],
  items: readonly (readonly [string, readonly KmipItem[]])[],
  headerExtras: readonly KmipItem[] = [],
): KmipItem {
  return struct("RequestMessage", [
    struct("RequestHeader", [
      struct("ProtocolVersion", [
        integer("ProtocolVersionMajor", version[0]),
        integer("ProtocolVersionMinor", version[1]),
      ]),
      ...headerExtras,
      integer("BatchCount", items.length),
    ]),
    ...items.map(([operation, payload]) =>
      struct("BatchItem", [enumItem("Operation", operation), struct("RequestPayload", payload)]),
    ),
  ]);
}

/** Sends a request through TTLV and returns the decoded response's Batch Items. */
export async function send(
  dispatcher: KmipDispatcher,
  request: KmipItem,
): Promise<StructureItem[]> {
  const response = decodeTtlv(
    await dispatcher.handleTtlv(encodeTtlv(request), { identity: "test-client" }),
  );
  if (response.type !== "Structure") throw new Error("response is not a structure");
  return children(response, "BatchItem") as StructureItem[];
}

/** Runs one operation and returns its Batch Item. */
export async function call(
  dispatcher: KmipDispatcher,
  operation: string,
  payload: readonly KmipItem[],
  version: [number, number] = [2, 1],
): Promise<StructureItem> {
  const [item] = await send(dispatcher, requestMessage(version, [[operation, payload]]));
  return item!;
}

export function resultStatus(item: StructureItem): string {
  return enumName(child(item, "ResultStatus")!);
}

export function resultReason(item: StructureItem): string | undefined {
  const reason = child(item, "ResultReason");
  return reason === undefined ? undefined : enumName(reason);
}

/** Returns the response payload, failing the test with the Result Message when the operation failed. */
export function payloadOf(item: StructureItem): StructureItem {
  if (resultStatus(item) !== "Success") {
    const message = child(item, "ResultMessage");
    throw new Error(`operation failed: ${resultReason(item)} ${message?.value as string}`);
  }
  return child(item, "ResponsePayload") as StructureItem;
}

/** Returns the Unique Identifier of a response payload. */
export function uidOf(payload: StructureItem): string {
  return textOf(child(payload, "UniqueIdentifier")!);
}

/** Builds an Activation Date a minute in the past, so the new object is Active at once. */
export function activeSince(): KmipItem {
  return dateTime("ActivationDate", BigInt(Math.floor(Date.now() / 1000) - 60));
}

/**
 * Registers an active key of `objectType` with all usage bits, whose Key
 * Block holds `material` in Key Format Type `format`, and returns the
 * response's Batch Item.
 */
export function registerKey(
  dispatcher: KmipDispatcher,
  objectType: "PrivateKey" | "PublicKey",
  format: string,
  material: Buffer,
  algorithm: string,
  length: number,
): Promise<StructureItem> {
  return call(dispatcher, "Register", [
    enumItem("ObjectType", objectType),
    struct("Attributes", [integer("CryptographicUsageMask", 0xf), activeSince()]),
    struct(objectType, [
      struct("KeyBlock", [
        enumItem("KeyFormatType", format),
        struct("KeyValue", [bytes("KeyMaterial", material)]),
        enumItem("CryptographicAlgorithm", algorithm),
        integer("CryptographicLength", length),
      ]),
    ]),
  ]);
}

/** Cryptographic Usage Mask bits for Encrypt and Decrypt. */
export const ENCRYPT_DECRYPT = 4 | 8;

/** Returns a Unique Identifier item for `uid`. */
export function uidItem(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

/** Creates an Active AES-256 key for Encrypt and Decrypt, with `extra` attributes, and returns its identifier. */
export async function createActiveAes(
  dispatcher: KmipDispatcher,
  extra: KmipItem[] = [],
): Promise<string> {
  const created = payloadOf(
    await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT_DECRYPT),
        activeSince(),
        ...extra,
      ]),
    ]),
  );
  return textOf(child(created, "UniqueIdentifier")!);
}

/** Returns the Attributes structure that Get Attributes returns for `uid`. */
export async function attributesOf(
  dispatcher: KmipDispatcher,
  uid: string,
): Promise<StructureItem> {
  const payload = payloadOf(await call(dispatcher, "GetAttributes", [uidItem(uid)]));
  return child(payload, "Attributes") as StructureItem;
}
