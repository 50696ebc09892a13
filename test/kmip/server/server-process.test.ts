import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { connect } from "node:tls";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { child, enumItem, enumName } from "../../../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv, ttlvMessageLength } from "../../../src/kmip/ttlv.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { requestMessage } from "./helpers.ts";

/** Sends one TTLV request over mutual TLS and returns the decoded response. */
async function exchange(pki: TestPki, port: number, request: Buffer): Promise<StructureItem> {
  const socket = connect({
    host: "127.0.0.1",
    port,
    ca: pki.ca,
    cert: pki.clientCert,
    key: pki.clientKey,
    servername: "127.0.0.1",
  });
  try {
    let buffer = Buffer.alloc(0);
    return await new Promise<StructureItem>((resolve, reject) => {
      socket.on("secureConnect", () => socket.write(request));
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        if (buffer.length >= 8 && buffer.length >= ttlvMessageLength(buffer)) {
          resolve(decodeTtlv(buffer.subarray(0, ttlvMessageLength(buffer))) as StructureItem);
        }
      });
      socket.on("error", reject);
      socket.on("close", () => reject(new Error("connection closed before a response")));
    });
  } finally {
    socket.destroy();
  }
}

describe("keyward server with --kmip-listen", () => {
  let pki: TestPki;
  let server: ServerProcess | undefined;
  let kmipPort = 0;

  before(async () => {
    // The test itself reports a missing openssl through requirePeer.
    if (!hasProgram("openssl")) return;
    pki = makeTestPki();
    // A free port: bind 0 in a throwaway server, then give it to Keyward.
    const { createServer } = await import("node:net");
    kmipPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    server = await startDevServer({
      args: [
        "--kmip-listen",
        `127.0.0.1:${kmipPort}`,
        "--kmip-tls-cert-file",
        pki.serverCertPath,
        "--kmip-tls-key-file",
        pki.serverKeyPath,
        "--kmip-client-ca-file",
        pki.caPath,
      ],
    });
  });

  after(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  it("answers a KMIP query over mutual TLS", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const response = await exchange(
      pki,
      kmipPort,
      encodeTtlv(
        requestMessage([2, 0], [["Query", [enumItem("QueryFunction", "QueryOperations")]]]),
      ),
    );
    const item = child(response, "BatchItem") as StructureItem;
    assert.equal(enumName(child(item, "ResultStatus")!), "Success");
  });
});
