import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
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
import { callServer } from "../../helpers/http.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { cli, type ServerProcess } from "../../helpers/server-process.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { payloadOf } from "./helpers.ts";
import { type ClientCredential, callTls, freePort, startKmipDevServer } from "./server-helpers.ts";

/** Sends an HTTP request with the root token and returns the parsed `data` of the response. */
async function api(server: ServerProcess, method: string, path: string, body?: object) {
  const response = await callServer(server.address, method, path, body, server.rootToken);
  assert.ok(
    response.status >= 200 && response.status < 300,
    `${method} ${path} failed with ${response.status}: ${JSON.stringify(response.body)}`,
  );
  return (response.body as { data?: unknown } | undefined)?.data;
}

describe("keyward server with --kmip-listen", () => {
  let pki: TestPki;
  let server: ServerProcess | undefined;
  let kmipPort = 0;
  let credential: ClientCredential;

  before(async () => {
    // The test itself reports a missing openssl through requirePeer.
    if (!hasProgram("openssl")) return;
    pki = makeTestPki();
    credential = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: "127.0.0.1" };
    kmipPort = await freePort();
    server = await startKmipDevServer(kmipPort, {
      args: [
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
    const item = await callTls(
      kmipPort,
      credential,
      "Query",
      [enumItem("QueryFunction", "QueryOperations")],
      [2, 0],
    );
    assert.equal(enumName(child(item, "ResultStatus")!), "Success");
  });

  it("audits KMIP requests verifiably", async (t) => {
    if (!requirePeer(t, "openssl") || server === undefined) return;
    const logPath = join(server.dataDir, "kmip-audit.log");
    await api(server, "PUT", "sys/audit/file", { type: "file", options: { file_path: logPath } });
    const send = async (operation: string, payload: KmipItem[]) =>
      payloadOf(await callTls(kmipPort, credential, operation, payload, [2, 0]));

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
