import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { decodeJson, encodeJson } from "../../../src/kmip/json.ts";
import { handleKmipHttp } from "../../../src/kmip/server/http.ts";
import { child, enumItem, enumName, textOf } from "../../../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { decodeXml, encodeXml } from "../../../src/kmip/xml.ts";
import { newDispatcher, requestMessage } from "./helpers.ts";

const QUERY = requestMessage(
  [2, 1],
  [["Query", [enumItem("QueryFunction", "QueryServerInformation")]]],
);

function vendorOf(response: StructureItem): string {
  const item = child(response, "BatchItem") as StructureItem;
  const payload = child(item, "ResponsePayload") as StructureItem;
  return textOf(child(payload, "VendorIdentification")!);
}

function reasonOf(response: StructureItem): string {
  const item = child(response, "BatchItem") as StructureItem;
  return enumName(child(item, "ResultReason")!);
}

describe("KMIP over HTTP", () => {
  for (const [name, contentType, encode, decode] of [
    ["ok TTLV", "application/octet-stream", encodeTtlv, (body: Buffer) => decodeTtlv(body)],
    [
      "ok XML",
      "text/xml",
      (item: typeof QUERY) => Buffer.from(encodeXml(item)),
      (body: Buffer) => decodeXml(body.toString()),
    ],
    [
      "ok JSON",
      "application/json; charset=utf-8",
      (item: typeof QUERY) => Buffer.from(encodeJson(item)),
      (body: Buffer) => decodeJson(body.toString()),
    ],
  ] as const) {
    it(name, async () => {
      const response = await handleKmipHttp(newDispatcher(), contentType, encode(QUERY));
      assert.equal(response.status, 200);
      assert.equal(response.contentType.split(";")[0], contentType.split(";")[0]);
      assert.equal(vendorOf(decode(response.body) as StructureItem), "Keyward");
    });
  }

  it("fail undecodable JSON body", async () => {
    const response = await handleKmipHttp(
      newDispatcher(),
      "application/json",
      Buffer.from("{not json"),
    );
    assert.equal(response.status, 200);
    assert.equal(reasonOf(decodeJson(response.body.toString()) as StructureItem), "InvalidMessage");
  });

  it("fail unsupported media type", async () => {
    const response = await handleKmipHttp(newDispatcher(), "text/plain", Buffer.from("x"));
    assert.equal(response.status, 415);
  });

  it("fail oversized body", async () => {
    const response = await handleKmipHttp(
      newDispatcher(),
      "application/octet-stream",
      Buffer.alloc(64),
      {
        maxMessageBytes: 32,
      },
    );
    assert.equal(response.status, 413);
  });
});
