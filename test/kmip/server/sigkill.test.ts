/**
 * KMIP Creates under SIGKILL: a real `keyward server` is killed while
 * clients create keys, and each Create that got a success response must
 * be Gettable after the restart, with the key bytes a Get returned before.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { StructureItem } from "../../../src/kmip/item.ts";
import { child, enumItem, integer, struct, text, textOf } from "../../../src/kmip/server/items.ts";
import { callServer } from "../../helpers/http.ts";
import { hasProgram, requirePeer } from "../../helpers/peers.ts";
import { type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
import { makeTestPki, type TestPki } from "./certs.ts";
import { activeSince, payloadOf, resultStatus } from "./helpers.ts";
import { type ClientCredential, callTls, freePort } from "./server-helpers.ts";

/** Kill rounds. Each starts the server, creates keys under load and kills it. */
const ROUNDS = 4;
/** Concurrent clients per round. */
const WRITERS = 3;
const ROOT_TOKEN = "kmip-sigkill-root-token";

/** The hex key bytes of each acknowledged Create, or null before a Get returned them. */
type Acknowledged = Map<string, string | null>;

function keyBytesOf(item: StructureItem): string {
  const key = child(payloadOf(item), "SymmetricKey") as StructureItem;
  const block = child(key, "KeyBlock") as StructureItem;
  const material = child(child(block, "KeyValue") as StructureItem, "KeyMaterial");
  assert.ok(material !== undefined);
  assert.equal(material.type, "ByteString");
  return Buffer.from(material.value as Uint8Array).toString("hex");
}

async function startServer(dataDir: string, pki: TestPki, port: number): Promise<ServerProcess> {
  return startDevServer({
    dataDir,
    args: [
      "--dev-root-token",
      ROOT_TOKEN,
      "--kmip-listen",
      `127.0.0.1:${port}`,
      "--kmip-tls-cert-file",
      pki.serverCertPath,
      "--kmip-tls-key-file",
      pki.serverKeyPath,
      "--kmip-client-ca-file",
      pki.caPath,
    ],
  });
}

/** Creates and reads keys until the connection fails, recording each acknowledged one. */
async function createUntilKilled(
  port: number,
  credential: ClientCredential,
  acknowledged: Acknowledged,
): Promise<void> {
  for (;;) {
    let uid: string;
    try {
      const created = await callTls(port, credential, "Create", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [
          enumItem("CryptographicAlgorithm", "AES"),
          integer("CryptographicLength", 256),
          integer("CryptographicUsageMask", 12),
          activeSince(),
        ]),
      ]);
      if (resultStatus(created) !== "Success") continue;
      uid = textOf(child(payloadOf(created), "UniqueIdentifier")!);
      acknowledged.set(uid, null);
      const got = await callTls(port, credential, "Get", [text("UniqueIdentifier", uid)]);
      acknowledged.set(uid, keyBytesOf(got));
    } catch {
      return;
    }
  }
}

/** Checks each acknowledged Create through KMIP Get and through the transit key of its material. */
async function verify(
  server: ServerProcess,
  port: number,
  credential: ClientCredential,
  acknowledged: Acknowledged,
): Promise<void> {
  for (const [uid, bytes] of acknowledged) {
    const path = `kmip-keys/keys/${uid}`;
    const key = await callServer(server.address, "GET", path, undefined, server.rootToken);
    assert.equal(key.status, 200, `transit key ${uid} of an acknowledged Create is missing`);
    const got = await callTls(port, credential, "Get", [text("UniqueIdentifier", uid)]);
    assert.equal(resultStatus(got), "Success", `acknowledged object ${uid} is missing`);
    if (bytes !== null) assert.equal(keyBytesOf(got), bytes, `key bytes of ${uid} changed`);
  }
}

describe("KMIP durability under SIGKILL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-kmip-sigkill-"));
  let pki: TestPki | undefined;
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  });

  it("keeps every acknowledged Create", async (t) => {
    if (!requirePeer(t, "openssl") || !hasProgram("openssl")) return;
    pki = makeTestPki();
    const credential: ClientCredential = {
      ca: pki.ca,
      cert: pki.clientCert,
      key: pki.clientKey,
      servername: "127.0.0.1",
    };
    const acknowledged: Acknowledged = new Map();
    for (let round = 0; round < ROUNDS; round++) {
      const port = await freePort();
      const server = await startServer(dataDir, pki, port);
      await verify(server, port, credential, acknowledged);
      const writers = Array.from({ length: WRITERS }, () =>
        createUntilKilled(port, credential, acknowledged),
      );
      // Kill at a varying moment: 200 to 700 ms into the load.
      await new Promise((resolve) => setTimeout(resolve, 200 + ((round * 131) % 500)));
      await server.stop("SIGKILL");
      await Promise.all(writers);
    }

    const port = await freePort();
    const final = await startServer(dataDir, pki, port);
    try {
      await verify(final, port, credential, acknowledged);
      assert.ok(acknowledged.size >= ROUNDS, `too few Creates acknowledged: ${acknowledged.size}`);
    } finally {
      await final.stop();
    }
  });
});
