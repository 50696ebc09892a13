import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { MAX_BATCH_ITEMS } from "../../../src/kmip/server/dispatcher.ts";
import {
  bytes,
  child,
  enumItem,
  enumName,
  integer,
  retag,
  struct,
  tag,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import {
  call,
  newDispatcher,
  payloadOf,
  requestMessage,
  resultReason,
  resultStatus,
  send,
} from "./helpers.ts";

function createPayload(): KmipItem[] {
  return [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [
      enumItem("CryptographicAlgorithm", "AES"),
      integer("CryptographicLength", 128),
      integer("CryptographicUsageMask", 12),
    ]),
  ];
}

/** Builds a KMIP 1.x Attribute structure with the value of `item`. */
function attribute1x(name: string, item: KmipItem): KmipItem {
  return struct("Attribute", [text("AttributeName", name), retag(item, tag("AttributeValue"))]);
}

async function decodeResponse(bytesIn: Uint8Array): Promise<StructureItem> {
  const response = decodeTtlv(await newDispatcher().handleTtlv(bytesIn));
  return response as StructureItem;
}

function firstBatchItem(response: StructureItem): StructureItem {
  return child(response, "BatchItem") as StructureItem;
}

describe("KMIP error responses", () => {
  const valid = encodeTtlv(requestMessage([2, 1], [["Query", []]]));

  for (const [name, mutate] of [
    ["fail truncated message", (b: Buffer) => b.subarray(0, b.length - 8)],
    [
      "fail wrong length field",
      (b: Buffer) => {
        const copy = Buffer.from(b);
        copy.writeUInt32BE(copy.readUInt32BE(4) + 8, 4);
        return copy;
      },
    ],
    [
      "fail nonzero padding",
      (b: Buffer) => {
        const copy = Buffer.from(b);
        copy[copy.length - 1] = 1;
        return copy;
      },
    ],
    [
      "fail unknown item type",
      (b: Buffer) => {
        const copy = Buffer.from(b);
        copy[11] = 0x7f;
        return copy;
      },
    ],
    [
      "fail tag outside KMIP ranges",
      (b: Buffer) => {
        const copy = Buffer.from(b);
        copy[8] = 0x10;
        return copy;
      },
    ],
  ] as const) {
    it(name, async () => {
      const response = await decodeResponse(mutate(valid));
      const item = firstBatchItem(response);
      assert.equal(resultStatus(item), "OperationFailed");
      assert.equal(resultReason(item), "InvalidMessage");
    });
  }

  it("fail message that is not a request", async () => {
    const response = await decodeResponse(encodeTtlv(struct("ResponseMessage", [])));
    assert.equal(resultReason(firstBatchItem(response)), "InvalidMessage");
  });

  it("fail unsupported protocol version", async () => {
    const [item] = await send(newDispatcher(), requestMessage([3, 0], [["Query", []]]));
    assert.equal(resultReason(item!), "InvalidMessage");
  });

  it("fail operation newer than the version", async () => {
    const item = await call(newDispatcher(), "Encrypt", [text("UniqueIdentifier", "x")], [1, 1]);
    assert.equal(resultReason(item), "OperationNotSupported");
  });

  it("fail unsupported operation", async () => {
    const item = await call(newDispatcher(), "Certify", []);
    assert.equal(resultReason(item), "OperationNotSupported");
  });

  it("fail unknown object per version", async () => {
    const dispatcher = newDispatcher();
    const v2 = await call(dispatcher, "Get", [text("UniqueIdentifier", "missing")]);
    assert.equal(resultReason(v2), "ObjectNotFound");
    const v1 = await call(dispatcher, "Get", [text("UniqueIdentifier", "missing")], [1, 4]);
    assert.equal(resultReason(v1), "ItemNotFound");
  });

  it("fail wrong item type in payload", async () => {
    const item = await call(newDispatcher(), "Get", [integer("UniqueIdentifier", 5)]);
    assert.equal(resultReason(item), "InvalidField");
  });

  it("fail batch count mismatch", async () => {
    const request = requestMessage([2, 1], [["Query", []]], []);
    const header = child(request as StructureItem, "RequestHeader") as StructureItem;
    const broken = struct("RequestMessage", [
      struct("RequestHeader", [
        ...header.value.filter((item) => item.tag !== tag("BatchCount")),
        integer("BatchCount", 2),
      ]),
      ...(request as StructureItem).value.slice(1),
    ]);
    const [item] = await send(newDispatcher(), broken);
    assert.equal(resultReason(item!), "InvalidMessage");
  });

  it("fail too many batch items", async () => {
    const dispatcher = newDispatcher();
    const items = (count: number) => Array.from({ length: count }, () => ["Query", []] as const);
    const limit = await send(dispatcher, requestMessage([2, 1], items(MAX_BATCH_ITEMS)));
    assert.equal(limit.length, MAX_BATCH_ITEMS);
    const [item] = await send(dispatcher, requestMessage([2, 1], items(MAX_BATCH_ITEMS + 1)));
    assert.equal(resultReason(item!), "InvalidMessage");
  });

  it("storage failure hides the cause", async () => {
    const barrier = new MemoryBarrier();
    barrier.failWrites = true;
    const item = await call(newDispatcher(barrier), "Create", createPayload());
    assert.equal(resultReason(item), "GeneralFailure");
    assert.equal(textOf(child(item, "ResultMessage")!), "internal error");
  });

  it("decrypt failure message has no data", async () => {
    const dispatcher = newDispatcher();
    const uid = textOf(
      child(payloadOf(await call(dispatcher, "Create", createPayload())), "UniqueIdentifier")!,
    );
    payloadOf(await call(dispatcher, "Activate", [text("UniqueIdentifier", uid)]));
    const secret = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    const item = await call(dispatcher, "Decrypt", [
      text("UniqueIdentifier", uid),
      struct("CryptographicParameters", [
        enumItem("BlockCipherMode", "CBC"),
        enumItem("PaddingMethod", "PKCS5"),
      ]),
      bytes("Data", secret),
      bytes("IVCounterNonce", Buffer.alloc(16)),
    ]);
    assert.equal(resultReason(item), "CryptographicFailure");
    const message = textOf(child(item, "ResultMessage")!);
    assert.ok(!message.includes(secret.toString("hex")));
  });

  it("batch uses the ID placeholder", async () => {
    const items = await send(
      newDispatcher(),
      requestMessage(
        [1, 4],
        [
          [
            "Create",
            [
              enumItem("ObjectType", "SymmetricKey"),
              struct("TemplateAttribute", [
                attribute1x("Cryptographic Algorithm", enumItem("CryptographicAlgorithm", "AES")),
                attribute1x("Cryptographic Length", integer("CryptographicLength", 256)),
              ]),
            ],
          ],
          ["Activate", []],
          ["Get", []],
        ],
      ),
    );
    assert.deepEqual(items.map(resultStatus), ["Success", "Success", "Success"]);
  });

  it("batch undo restores changed objects", async () => {
    const dispatcher = newDispatcher();
    const name = struct("Name", [
      text("NameValue", "undone"),
      enumItem("NameType", "UninterpretedTextString"),
    ]);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          [
            "Create",
            [
              enumItem("ObjectType", "SymmetricKey"),
              struct("Attributes", [
                enumItem("CryptographicAlgorithm", "AES"),
                integer("CryptographicLength", 128),
                name,
              ]),
            ],
          ],
          ["Get", [text("UniqueIdentifier", "missing")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.deepEqual(items.map(resultStatus), ["OperationUndone", "OperationFailed"]);
    const located = payloadOf(await call(dispatcher, "Locate", [struct("Attributes", [name])]));
    assert.equal(child(located, "UniqueIdentifier"), undefined);
  });

  for (const [option, expected] of [
    ["Continue", ["OperationFailed", "Success"]],
    ["Stop", ["OperationFailed"]],
  ] as const) {
    it(`batch error option ${option}`, async () => {
      const items = await send(
        newDispatcher(),
        requestMessage(
          [2, 1],
          [
            ["Get", [text("UniqueIdentifier", "missing")]],
            ["Query", [enumItem("QueryFunction", "QueryServerInformation")]],
          ],
          [enumItem("BatchErrorContinuationOption", option)],
        ),
      );
      assert.deepEqual(items.map(resultStatus), expected);
      assert.equal(enumName(child(items[0]!, "Operation")!), "Get");
    });
  }
});
