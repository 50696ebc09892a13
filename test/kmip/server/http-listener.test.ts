import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { request } from "node:https";
import { after, before, describe, it } from "node:test";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { decodeJson, encodeJson } from "../../../src/kmip/json.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { child, enumItem, enumName, textOf } from "../../../src/kmip/server/items.ts";
import { type KmipServer, startKmipServer } from "../../../src/kmip/server/listener.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { decodeXml, encodeXml } from "../../../src/kmip/xml.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { hasProgram } from "../../helpers/peers.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { requestMessage } from "./helpers.ts";

const silentLogger = { error() {}, warn() {}, info() {} };

const QUERY = requestMessage(
  [2, 1],
  [["Query", [enumItem("QueryFunction", "QueryServerInformation")]]],
);

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Returns the Result Status of the first Batch Item of a response message. */
function statusOf(message: StructureItem): string {
  const item = child(message, "BatchItem") as StructureItem;
  return enumName(child(item, "ResultStatus")!);
}

// The KMIP listener also serves KMIP's HTTPS binding on its port: a POST to
// /kmip with one request message in TTLV, XML or JSON, over the same mutual TLS.
describe("KMIP over HTTP on the listener", {
  skip: !hasProgram("openssl") && process.env.CI !== "true",
}, () => {
  let pki: TestPki;
  let server: KmipServer;

  before(async () => {
    pki = makeTestPki("storage-array-8");
    server = await startKmipServer({
      dispatcher: new KmipDispatcher({ store: new KmipObjectStore(new MemoryBarrier()) }),
      host: "127.0.0.1",
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      logger: silentLogger,
      maxMessageBytes: 4096,
      idleTimeoutMs: 2000,
    });
  });

  after(async () => {
    await server?.close();
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  });

  function post(
    body: Buffer | string,
    contentType: string,
    options: { method?: string; path?: string } = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: "127.0.0.1",
          port: server.port,
          method: options.method ?? "POST",
          path: options.path ?? "/kmip",
          ca: pki.ca,
          cert: pki.clientCert,
          key: pki.clientKey,
          headers: { "content-type": contentType },
          agent: false,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              contentType: String(response.headers["content-type"]),
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on("error", reject);
      outgoing.end(body);
    });
  }

  it("answers JSON", async () => {
    const answer = await post(encodeJson(QUERY), "application/json");
    assert.equal(answer.status, 200);
    assert.match(answer.contentType, /^application\/json/);
    assert.equal(statusOf(decodeJson(answer.body.toString("utf8")) as StructureItem), "Success");
  });

  it("answers XML", async () => {
    const answer = await post(encodeXml(QUERY), "text/xml");
    assert.equal(answer.status, 200);
    assert.match(answer.contentType, /^text\/xml/);
    assert.equal(statusOf(decodeXml(answer.body.toString("utf8")) as StructureItem), "Success");
  });

  it("answers TTLV", async () => {
    const answer = await post(encodeTtlv(QUERY), "application/octet-stream");
    assert.equal(answer.status, 200);
    const response = decodeTtlv(answer.body) as StructureItem;
    assert.equal(statusOf(response), "Success");
    const header = child(response, "ResponseHeader") as StructureItem;
    assert.ok(child(header, "TimeStamp"));
  });

  it("fail unknown media type", async () => {
    const answer = await post("x", "text/plain");
    assert.equal(answer.status, 415);
  });

  it("fail body over the limit", async () => {
    const answer = await post(Buffer.alloc(5000, 0x20), "application/json");
    assert.equal(answer.status, 413);
  });

  it("fail other method and path", async () => {
    assert.equal((await post("", "application/json", { method: "GET" })).status, 405);
    assert.equal((await post(encodeJson(QUERY), "application/json", { path: "/" })).status, 404);
  });

  it("fail malformed JSON as a KMIP error", async () => {
    const answer = await post("{", "application/json");
    assert.equal(answer.status, 200);
    const response = decodeJson(answer.body.toString("utf8")) as StructureItem;
    assert.equal(statusOf(response), "OperationFailed");
    const item = child(response, "BatchItem") as StructureItem;
    assert.ok(textOf(child(item, "ResultMessage")!).length > 0);
  });
});
