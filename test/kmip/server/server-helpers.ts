import { createServer } from "node:net";
import { connect } from "node:tls";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { child } from "../../../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv, ttlvMessageLength } from "../../../src/kmip/ttlv.ts";
import { type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
import { requestMessage } from "./helpers.ts";

/** The TLS client side of a KMIP connection: PEM certificate, key and the CA that signed the server. */
export interface ClientCredential {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** The name the server certificate must carry; "localhost" when left out. */
  servername?: string;
}

/** Returns a loopback port that was free a moment ago: it binds port 0 in a throwaway server and closes it. */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Sends one TTLV request to 127.0.0.1:`port` over mutual TLS and returns the
 * decoded response, or rejects with the TLS error when the handshake fails.
 */
export async function exchangeTls(
  port: number,
  credential: ClientCredential,
  request: Buffer,
): Promise<StructureItem> {
  const socket = connect({
    host: "127.0.0.1",
    port,
    ca: credential.ca,
    cert: credential.cert,
    key: credential.key,
    servername: credential.servername ?? "localhost",
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

/** Sends one operation over mutual TLS (see `exchangeTls`) and returns its Batch Item. */
export async function callTls(
  port: number,
  credential: ClientCredential,
  operation: string,
  payload: readonly KmipItem[],
  version: [number, number] = [2, 1],
): Promise<StructureItem> {
  const request = encodeTtlv(requestMessage(version, [[operation, payload]]));
  const response = await exchangeTls(port, credential, request);
  return child(response, "BatchItem") as StructureItem;
}

/**
 * Starts `keyward server --dev` (see `startDevServer`) with its KMIP
 * listener on 127.0.0.1:`kmipPort` and `args` after that flag.
 */
export function startKmipDevServer(
  kmipPort: number,
  options: { args?: string[]; dataDir?: string } = {},
): Promise<ServerProcess> {
  return startDevServer({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    args: ["--kmip-listen", `127.0.0.1:${kmipPort}`, ...(options.args ?? [])],
  });
}
