import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../../src/api/app.ts";
import { DEFAULT_KMIP_KEYS_MOUNT } from "../../../src/config.ts";
import { Keyward } from "../../../src/core/keyward.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import {
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KMIP_OBJECTS_PREFIX } from "../../../src/kmip/server/object-store.ts";
import { createKmipService, type KmipService } from "../../../src/kmip/server/service.ts";
import { openSqliteStorage } from "../../../src/storage/index.ts";
import { activeSince, payloadOf } from "./helpers.ts";
import { type ClientCredential, callTls } from "./server-helpers.ts";

export const MOUNT = DEFAULT_KMIP_KEYS_MOUNT;
export const ENCRYPT = 4;
export const DECRYPT = 8;
export const SIGN = 1;
export const VERIFY = 2;

const EVERY_KMIP_OPERATION = `
path "kmip/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

/** One Keyward node on a SQLite file, unsealed, with the HTTP API and, when asked, the KMIP listener. */
export interface TestNode {
  keyward: Keyward;
  app: FastifyInstance;
  kmip: KmipService | undefined;
  kmipPort: number;
  dataDir: string;
  shares: string[];
  rootToken: string;
  /** Sends an HTTP request with the root token. */
  api(method: string, path: string, body?: object): Promise<LightMyRequestResponse>;
  /** Runs one KMIP operation over mutual TLS; needs `kmip`. */
  call(operation: string, payload: readonly KmipItem[]): Promise<StructureItem>;
  /** Lists the stored KMIP object identifiers, read from storage without KMIP. */
  storedObjects(): Promise<string[]>;
  close(): Promise<void>;
}

export interface OpenNodeOptions {
  /** A data directory of a node opened before; a new one when absent. */
  reuse?: { dataDir: string; shares: string[]; rootToken: string };
  kmip: boolean;
  clock?: () => Date;
}

/**
 * Opens a node: Keyward on `keyward.db` in the data directory, initialised
 * (new directory) or unsealed with the given shares, and with the KMIP
 * service started on a loopback port when `kmip` is true.
 */
export async function openNode(options: OpenNodeOptions): Promise<TestNode> {
  const dataDir = options.reuse?.dataDir ?? mkdtempSync(join(tmpdir(), "keyward-rotation-"));
  const storage = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({
    storage,
    logger,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  let shares = options.reuse?.shares ?? [];
  let rootToken = options.reuse?.rootToken ?? "";
  if (options.reuse === undefined) {
    const result = await keyward.init({ shares: 1, threshold: 1 });
    shares = result.keysHex;
    rootToken = result.rootToken;
  }
  for (const share of shares) await keyward.seal.submitUnsealShare(share);

  const kmip = options.kmip
    ? createKmipService({
        keyward,
        config: {
          host: "127.0.0.1",
          port: 0,
          tlsCertFile: undefined,
          tlsKeyFile: undefined,
          clientCaFile: undefined,
          serverHostnames: [],
          keysMount: MOUNT,
        },
        nodeId: "test-node",
        logger,
      })
    : undefined;
  const app = await buildApp({
    keyward,
    logger,
    maxRequestBytes: 1024 * 1024,
    ...(kmip === undefined ? {} : { kmip: kmip.credentials }),
  });
  await app.ready();
  const kmipPort = kmip === undefined ? 0 : await kmip.start();

  const api = (method: string, path: string, body?: object) =>
    app.inject({
      method: method as "GET",
      url: `/v1/${path}`,
      headers: { "x-vault-token": rootToken },
      ...(body === undefined ? {} : { payload: body }),
    });

  let credential: ClientCredential | undefined;
  const call = async (operation: string, payload: readonly KmipItem[]) => {
    if (kmip === undefined) throw new Error("this node runs no KMIP service");
    credential ??= await issueCredential(api);
    return callTls(kmipPort, credential, operation, payload);
  };

  return {
    keyward,
    app,
    kmip,
    kmipPort,
    dataDir,
    shares,
    rootToken,
    api,
    call,
    async storedObjects() {
      const names = await keyward.seal.barrier.list(KMIP_OBJECTS_PREFIX);
      return names.filter((name) => !name.endsWith("/"));
    },
    async close() {
      await kmip?.close();
      await app.close();
      await keyward.close();
    },
  };
}

/** Makes a role allowed every KMIP operation and returns a client credential of it. */
async function issueCredential(
  api: (method: string, path: string, body?: object) => Promise<LightMyRequestResponse>,
): Promise<ClientCredential> {
  const policy = await api("PUT", "sys/policies/acl/kmip-all", { policy: EVERY_KMIP_OPERATION });
  assert.equal(policy.statusCode, 204, policy.body);
  const role = await api("POST", "sys/kmip/roles/app", { token_policies: ["kmip-all"] });
  assert.equal(role.statusCode, 204, role.body);
  const generated = await api("POST", "sys/kmip/roles/app/credential/generate", {});
  assert.equal(generated.statusCode, 200, generated.body);
  const ca = await api("GET", "sys/kmip/ca/pem");
  assert.equal(ca.statusCode, 200, ca.body);
  const data = generated.json().data;
  return { cert: data.certificate, key: data.private_key, ca: ca.body };
}

export function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

/** Creates an Active AES-256 key with a Name through KMIP and returns its identifier. */
export async function createAes(node: TestNode, name: string): Promise<string> {
  const payload = payloadOf(
    await node.call("Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT | DECRYPT),
        struct("Name", [text("NameValue", name), enumItem("NameType", "UninterpretedTextString")]),
        activeSince(),
      ]),
    ]),
  );
  return textOf(child(payload, "UniqueIdentifier")!);
}

/** Creates an Active EC P-256 key pair through KMIP and returns both identifiers. */
export async function createEcPair(
  node: TestNode,
): Promise<{ privateUid: string; publicUid: string }> {
  const pair = payloadOf(
    await node.call("CreateKeyPair", [
      struct("CommonAttributes", [
        enumItem("CryptographicAlgorithm", "EC"),
        integer("CryptographicLength", 256),
        activeSince(),
      ]),
      struct("PrivateKeyAttributes", [integer("CryptographicUsageMask", SIGN)]),
      struct("PublicKeyAttributes", [integer("CryptographicUsageMask", VERIFY)]),
    ]),
  );
  return {
    privateUid: textOf(child(pair, "PrivateKeyUniqueIdentifier")!),
    publicUid: textOf(child(pair, "PublicKeyUniqueIdentifier")!),
  };
}

/** Returns the attributes that KMIP Get Attributes returns. */
export async function attributesOf(node: TestNode, uid: string): Promise<StructureItem> {
  return child(
    payloadOf(await node.call("GetAttributes", [id(uid)])),
    "Attributes",
  ) as StructureItem;
}

/** Returns an object's Links as `LinkType -> identifier`. */
export async function linksOf(node: TestNode, uid: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const link of children(await attributesOf(node, uid), "Link") as StructureItem[]) {
    found[enumName(child(link, "LinkType")!)] = textOf(child(link, "LinkedObjectIdentifier")!);
  }
  return found;
}

/** Returns an object's State name. */
export async function stateOf(node: TestNode, uid: string): Promise<string> {
  return enumName(child(await attributesOf(node, uid), "State")!);
}

/** Returns the Key Material bytes that KMIP Get returns for a key object. */
export async function keyBytes(node: TestNode, uid: string): Promise<Buffer> {
  const payload = payloadOf(await node.call("Get", [id(uid)]));
  const object = (child(payload, "SymmetricKey") ??
    child(payload, "PrivateKey") ??
    child(payload, "PublicKey")) as StructureItem;
  const block = child(object, "KeyBlock") as StructureItem;
  const value = child(block, "KeyValue") as StructureItem;
  return Buffer.from(child(value, "KeyMaterial")!.value as Uint8Array);
}

/** Returns the identifiers KMIP Locate returns for a Name, newest first. */
export async function locateByName(node: TestNode, name: string): Promise<string[]> {
  const payload = payloadOf(
    await node.call("Locate", [
      struct("Attributes", [
        struct("Name", [text("NameValue", name), enumItem("NameType", "UninterpretedTextString")]),
      ]),
    ]),
  );
  return children(payload, "UniqueIdentifier").map((item) => textOf(item));
}

/** Rotates a key through transit's HTTP API and returns its latest version. */
export async function rotateThroughTransit(node: TestNode, uid: string): Promise<number> {
  const rotated = await node.api("POST", `${MOUNT}/keys/${uid}/rotate`);
  assert.equal(rotated.statusCode, 200, rotated.body);
  return rotated.json().data.latest_version;
}
