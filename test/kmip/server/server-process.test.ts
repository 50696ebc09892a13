import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "node:tls";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import {
  bytes,
  bytesOf,
  child,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv, ttlvMessageLength } from "../../../src/kmip/ttlv.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { cli, type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
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

/** Returns the Response Payload of a one-item response, failing with the Result Message otherwise. */
function payloadOf(response: StructureItem): StructureItem {
  const item = child(response, "BatchItem") as StructureItem;
  const status = enumName(child(item, "ResultStatus")!);
  const message = child(item, "ResultMessage");
  assert.equal(status, "Success", message === undefined ? status : textOf(message));
  return child(item, "ResponsePayload") as StructureItem;
}

/** Sends an HTTP request with the root token and returns the parsed `data` of the response. */
async function api(server: ServerProcess, method: string, path: string, body?: object) {
  const response = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path} failed with ${response.status}: ${text}`);
  return text === "" ? undefined : (JSON.parse(text) as { data?: unknown }).data;
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

  it("audits KMIP requests verifiably", async (t) => {
    if (!requirePeer(t, "openssl") || server === undefined) return;
    const logPath = join(server.dataDir, "kmip-audit.log");
    await api(server, "PUT", "sys/audit/file", { type: "file", options: { file_path: logPath } });
    const send = async (operation: string, payload: KmipItem[]) =>
      payloadOf(
        await exchange(pki, kmipPort, encodeTtlv(requestMessage([2, 0], [[operation, payload]]))),
      );

    const created = await send("Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", 12),
      ]),
    ]);
    const uid = textOf(child(created, "UniqueIdentifier")!);
    await send("Activate", [text("UniqueIdentifier", uid)]);
    const got = await send("Get", [text("UniqueIdentifier", uid)]);
    const block = child(child(got, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
    const key = bytesOf(child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!);
    const plaintext = randomBytes(48);
    await send("Encrypt", [
      text("UniqueIdentifier", uid),
      struct("CryptographicParameters", [enumItem("BlockCipherMode", "GCM")]),
      bytes("Data", plaintext),
    ]);

    const found = (await api(server, "GET", "sys/audit/search?path_prefix=kmip/&limit=1000")) as {
      records: { type: string; request: { path: string; protocol?: string } }[];
    };
    const paths = found.records
      .filter((record) => record.type === "request")
      .map((record) => record.request.path);
    // The query of the test before this one may come first.
    assert.deepEqual(paths.slice(-4), ["kmip/Create", "kmip/Activate", "kmip/Get", "kmip/Encrypt"]);
    for (const record of found.records) assert.equal(record.request.protocol, "kmip");
    const stored = JSON.stringify(found);
    const file = readFileSync(logPath, "utf8");
    for (const secret of [key, plaintext]) {
      for (const encoded of [
        Buffer.from(secret).toString("hex"),
        Buffer.from(secret).toString("hex").toUpperCase(),
        Buffer.from(secret).toString("base64"),
      ]) {
        assert.ok(!stored.includes(encoded), "a store device record contains a secret");
        assert.ok(!file.includes(encoded), "a file device record contains a secret");
      }
    }

    const publicKey = (await api(server, "GET", "sys/audit/public-key")) as { public_key: string };
    const keyPath = join(server.dataDir, "audit-key.pem");
    writeFileSync(keyPath, publicKey.public_key);
    const client = ["--address", server.address, "--token", server.rootToken];
    const store = await cli(["audit", "verify", "--store", ...client]);
    assert.equal(store.status, 0, store.stdout + store.stderr);
    const offline = await cli(["audit", "verify", logPath, "--public-key", keyPath]);
    assert.equal(offline.status, 0, offline.stdout + offline.stderr);
  });
});
