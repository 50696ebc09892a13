import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { connect, type TLSSocket } from "node:tls";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import type { KmipClient } from "../../../src/kmip/server/context.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { child, children, enumItem, enumName, textOf } from "../../../src/kmip/server/items.ts";
import { type KmipServer, startKmipServer } from "../../../src/kmip/server/listener.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { decodeTtlv, encodeTtlv, ttlvMessageLength } from "../../../src/kmip/ttlv.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { requestMessage } from "./helpers.ts";

const silentLogger = { error() {}, warn() {}, info() {} };

/** A dispatcher that records the identity of each request. */
class RecordingDispatcher extends KmipDispatcher {
  readonly identities: (string | undefined)[] = [];

  override async handleTtlv(
    message: Uint8Array,
    client: KmipClient = {},
    limits = {},
  ): Promise<Buffer> {
    this.identities.push(client.identity);
    return super.handleTtlv(message, client, limits);
  }
}

const QUERY = encodeTtlv(
  requestMessage([1, 4], [["Query", [enumItem("QueryFunction", "QueryServerInformation")]]]),
);

/** Reads framed TTLV messages from a socket until it closes. */
class Reader {
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(socket: TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => {});
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Returns the next message, or undefined when the connection closed first. */
  async next(): Promise<StructureItem | undefined> {
    for (;;) {
      if (this.#buffer.length >= 8) {
        const length = ttlvMessageLength(this.#buffer);
        if (this.#buffer.length >= length) {
          const message = this.#buffer.subarray(0, length);
          this.#buffer = this.#buffer.subarray(length);
          return decodeTtlv(message) as StructureItem;
        }
      }
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}

function resultOf(message: StructureItem | undefined): { status: string; reason?: string } {
  assert.ok(message !== undefined, "expected a response before the connection closed");
  const item = child(message, "BatchItem") as StructureItem;
  const reason = child(item, "ResultReason");
  return {
    status: enumName(child(item, "ResultStatus")!),
    ...(reason === undefined ? {} : { reason: enumName(reason) }),
  };
}

describe("KMIP TLS listener", { skip: !hasProgram("openssl") && process.env.CI !== "true" }, () => {
  let pki: TestPki;
  let server: KmipServer;
  let dispatcher: RecordingDispatcher;

  before(async () => {
    pki = makeTestPki("storage-array-7");
    dispatcher = new RecordingDispatcher({ store: new KmipObjectStore(new MemoryBarrier()) });
    server = await startKmipServer({
      dispatcher,
      host: "127.0.0.1",
      port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      logger: silentLogger,
      maxMessageBytes: 4096,
      idleTimeoutMs: 300,
    });
  });

  after(async () => {
    await server?.close();
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  });

  async function open(withClientCert = true): Promise<{ socket: TLSSocket; reader: Reader }> {
    const socket = connect({
      host: "127.0.0.1",
      port: server.port,
      ca: pki.ca,
      ...(withClientCert ? { cert: pki.clientCert, key: pki.clientKey } : {}),
    });
    const reader = new Reader(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return { socket, reader };
  }

  it("answers several requests per connection", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    socket.write(Buffer.concat([QUERY, QUERY]));
    for (let index = 0; index < 2; index++) {
      const response = await reader.next();
      assert.deepEqual(resultOf(response), { status: "Success" });
      const payload = child(
        child(response!, "BatchItem") as StructureItem,
        "ResponsePayload",
      ) as StructureItem;
      assert.equal(textOf(child(payload, "VendorIdentification")!), "Keyward");
    }
    assert.equal(dispatcher.identities.at(-1), "storage-array-7");
    socket.end();
  });

  it("answers before a half-close", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    socket.write(Buffer.concat([QUERY, QUERY]));
    socket.end();
    assert.deepEqual(resultOf(await reader.next()), { status: "Success" });
    assert.deepEqual(resultOf(await reader.next()), { status: "Success" });
    assert.equal(await reader.next(), undefined);
  });

  it("fail half-close inside a message", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    socket.write(QUERY.subarray(0, QUERY.length - 3));
    socket.end();
    assert.deepEqual(resultOf(await reader.next()), {
      status: "OperationFailed",
      reason: "InvalidMessage",
    });
  });

  it("fail client without certificate", async (t) => {
    requirePeer(t, "openssl");
    const attempt = async () => {
      const { socket, reader } = await open(false);
      socket.write(QUERY);
      const response = await reader.next();
      if (response === undefined) throw new Error("connection closed");
      return response;
    };
    await assert.rejects(attempt);
  });

  it("fail oversized frame and close", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    const header = Buffer.from(QUERY.subarray(0, 8));
    header.writeUInt32BE(1 << 20, 4);
    socket.write(header);
    assert.deepEqual(resultOf(await reader.next()), {
      status: "OperationFailed",
      reason: "InvalidMessage",
    });
    assert.equal(await reader.next(), undefined);
  });

  it("fail bytes that are not TTLV", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    // Not an HTTP request line either, which the listener hands to its HTTP server.
    socket.write("hello, this is not a KMIP message\r\n");
    assert.deepEqual(resultOf(await reader.next()), {
      status: "OperationFailed",
      reason: "InvalidMessage",
    });
    assert.equal(await reader.next(), undefined);
  });

  it("fail truncated frame at end", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    socket.end(QUERY.subarray(0, QUERY.length - 16));
    const response = await reader.next();
    if (response !== undefined) {
      assert.deepEqual(resultOf(response), { status: "OperationFailed", reason: "InvalidMessage" });
    }
    assert.equal(await reader.next(), undefined);
  });

  it("closes a stalled frame when idle", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    socket.write(QUERY.subarray(0, 20));
    assert.equal(await reader.next(), undefined);
  });

  it("answers a malformed message body", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    const broken = Buffer.from(QUERY);
    broken[broken.length - 1] = 1;
    socket.write(Buffer.concat([broken, QUERY]));
    assert.deepEqual(resultOf(await reader.next()), {
      status: "OperationFailed",
      reason: "InvalidMessage",
    });
    assert.deepEqual(resultOf(await reader.next()), { status: "Success" });
    socket.end();
  });

  it("keeps serving after bad clients", async (t) => {
    requirePeer(t, "openssl");
    const { socket, reader } = await open();
    const create = encodeTtlv(requestMessage([2, 1], [["DiscoverVersions", []]]) as KmipItem);
    socket.write(create);
    const response = await reader.next();
    assert.deepEqual(resultOf(response), { status: "Success" });
    const payload = child(
      child(response!, "BatchItem") as StructureItem,
      "ResponsePayload",
    ) as StructureItem;
    assert.equal(children(payload, "ProtocolVersion").length, 7);
    socket.end();
  });
});
