/**
 * Two KMIP roles on one server: "owner" may use every object, and "app"
 * only the objects its policy names. Neither a Link that app sets on its
 * own keys nor Locate may let app change or list the owner's objects.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  KmipIdentityResolver,
  type KmipPeerCertificate,
} from "../../../src/kmip/server/identity.ts";
import { KmipIdentityStore } from "../../../src/kmip/server/identity-store.ts";
import {
  bytes,
  child,
  children,
  enumItem,
  enumName,
  integer,
  integerOf,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { Acl } from "../../../src/policy/acl.ts";
import { parsePolicy } from "../../../src/policy/parse.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { activeSince, requestMessage, resultReason, resultStatus } from "./helpers.ts";

const OWNER_POLICY = `path "kmip/*" { capabilities = ["create", "read", "update", "delete", "list"] }`;
const MOUNT = "kmip-keys";

type Client = (operation: string, payload: readonly KmipItem[]) => Promise<StructureItem>;

function peer(commonName: string): KmipPeerCertificate {
  const serial = commonName === "owner-1" ? "01" : "02";
  return {
    commonName,
    organizationalUnits: [],
    serialNumber: serial,
    fingerprint: serial.repeat(32),
  };
}

/**
 * Builds a server with roles "owner" and "app", whose keys are managed
 * keys of a transit mount. The texts in `policies` may change between
 * requests, because each request message compiles them again.
 */
async function setup(policies: Record<string, string>) {
  const barrier = new MemoryBarrier();
  const identities = new KmipIdentityStore(barrier);
  for (const name of ["owner", "app"]) {
    await identities.writeRole({
      name,
      policies: [name],
      allowedCommonNames: [`${name}-*`],
      ttlSeconds: 3600,
      maxTtlSeconds: 7200,
      keyType: "ec",
      keyBits: 256,
    });
  }
  const transit = new TransitService({ barrier, mount: MOUNT });
  const managedKeys = new KmipManagedKeys({
    mount: MOUNT,
    keyStore: async () => transit.keyStore,
  });
  const dispatcher = new KmipDispatcher({
    store: new KmipObjectStore(barrier, { managedKeys }),
    identities: new KmipIdentityResolver({
      store: identities,
      policies: {
        acl: async (names: readonly string[]) =>
          Acl.compile(names.map((name) => parsePolicy(name, policies[name] ?? ""))),
      },
      source: "external",
    }),
  });
  const clientFor =
    (commonName: string): Client =>
    async (operation, payload) => {
      const response = (await dispatcher.handleMessage(
        requestMessage([2, 1], [[operation, payload]]),
        { identity: commonName, certificate: peer(commonName) },
      )) as StructureItem;
      return children(response, "BatchItem")[0] as StructureItem;
    };
  return { transit, owner: clientFor("owner-1"), app: clientFor("app-1") };
}

function payloadOf(item: StructureItem): StructureItem {
  const message = child(item, "ResultMessage");
  assert.equal(resultStatus(item), "Success", message === undefined ? "" : textOf(message));
  return child(item, "ResponsePayload") as StructureItem;
}

function nameAttribute(name: string): KmipItem {
  return struct("Name", [text("NameValue", name), enumItem("NameType", "UninterpretedTextString")]);
}

function link(type: string, uid: string): KmipItem {
  return struct("Link", [enumItem("LinkType", type), text("LinkedObjectIdentifier", uid)]);
}

async function createPair(
  client: Client,
  publicName: string,
): Promise<{ privateUid: string; publicUid: string }> {
  const payload = payloadOf(
    await client("CreateKeyPair", [
      struct("CommonAttributes", [
        enumItem("CryptographicAlgorithm", "EC"),
        enumItem("RecommendedCurve", "P_256"),
        activeSince(),
      ]),
      struct("PrivateKeyAttributes", [integer("CryptographicUsageMask", 1)]),
      struct("PublicKeyAttributes", [
        integer("CryptographicUsageMask", 2),
        nameAttribute(publicName),
      ]),
    ]),
  );
  return {
    privateUid: textOf(child(payload, "PrivateKeyUniqueIdentifier")!),
    publicUid: textOf(child(payload, "PublicKeyUniqueIdentifier")!),
  };
}

async function createAes(client: Client, name: string): Promise<string> {
  const payload = payloadOf(
    await client("Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", 12),
        nameAttribute(name),
        activeSince(),
      ]),
    ]),
  );
  return textOf(child(payload, "UniqueIdentifier")!);
}

/** Registers an active AES key with the extra attributes. */
function registerAes(client: Client, extra: readonly KmipItem[]): Promise<StructureItem> {
  return client("Register", [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [integer("CryptographicUsageMask", 12), activeSince(), ...extra]),
    struct("SymmetricKey", [
      struct("KeyBlock", [
        enumItem("KeyFormatType", "Raw"),
        struct("KeyValue", [bytes("KeyMaterial", randomBytes(32))]),
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
      ]),
    ]),
  ]);
}

async function linksOf(client: Client, uid: string): Promise<string[]> {
  const payload = payloadOf(await client("GetAttributes", [text("UniqueIdentifier", uid)]));
  const attributes = child(payload, "Attributes") as StructureItem;
  return (children(attributes, "Link") as StructureItem[]).map(
    (item) =>
      `${enumName(child(item, "LinkType")!)}:${textOf(child(item, "LinkedObjectIdentifier")!)}`,
  );
}

async function locateUids(client: Client, payload: readonly KmipItem[]): Promise<string[]> {
  return children(payloadOf(await client("Locate", payload)), "UniqueIdentifier").map(textOf);
}

/** Points the private key's Public Key Link at `target` instead of `current`. */
async function relinkPublicKey(
  client: Client,
  privateUid: string,
  current: string,
  target: string,
): Promise<void> {
  payloadOf(
    await client("ModifyAttribute", [
      text("UniqueIdentifier", privateUid),
      struct("CurrentAttribute", [link("PublicKeyLink", current)]),
      struct("NewAttribute", [link("PublicKeyLink", target)]),
    ]),
  );
}

describe("kmip role isolation", () => {
  it("re-key key pair spares other role's key", async () => {
    const policies: Record<string, string> = {
      owner: OWNER_POLICY,
      app: `path "kmip/create-key-pair" { capabilities = ["create"] }`,
    };
    const { owner, app } = await setup(policies);
    const ownerPair = await createPair(owner, "owner-public");
    const appPair = await createPair(app, "app-public");
    // The app role may change and re-key its own private key, and nothing else.
    policies.app += `
path "kmip/modify-attribute/${appPair.privateUid}" { capabilities = ["update"] }
path "kmip/re-key-key-pair/${appPair.privateUid}" { capabilities = ["create"] }`;
    const before = await linksOf(owner, ownerPair.publicUid);

    await relinkPublicKey(app, appPair.privateUid, appPair.publicUid, ownerPair.publicUid);
    const rekeyed = await app("ReKeyKeyPair", [
      text("PrivateKeyUniqueIdentifier", appPair.privateUid),
    ]);

    assert.equal(resultReason(rekeyed), "PermissionDenied");
    const message = textOf(child(rekeyed, "ResultMessage")!);
    assert.ok(message.includes(`kmip/re-key-key-pair/${ownerPair.publicUid}`), message);
    assert.deepEqual(await linksOf(owner, ownerPair.publicUid), before);
    const located = await locateUids(owner, [
      struct("Attributes", [nameAttribute("owner-public")]),
    ]);
    assert.deepEqual(located, [ownerPair.publicUid]);
  });

  it("re-key key pair needs both keys' paths", async () => {
    const policies: Record<string, string> = {
      owner: OWNER_POLICY,
      app: `path "kmip/create-key-pair" { capabilities = ["create"] }`,
    };
    const { app } = await setup(policies);
    const pair = await createPair(app, "app-public");
    policies.app += `
path "kmip/re-key-key-pair/${pair.privateUid}" { capabilities = ["create"] }`;

    const denied = await app("ReKeyKeyPair", [text("PrivateKeyUniqueIdentifier", pair.privateUid)]);
    assert.equal(resultReason(denied), "PermissionDenied");

    policies.app += `
path "kmip/re-key-key-pair/${pair.publicUid}" { capabilities = ["create"] }`;
    const allowed = await app("ReKeyKeyPair", [
      text("PrivateKeyUniqueIdentifier", pair.privateUid),
    ]);
    assert.equal(resultStatus(allowed), "Success");
  });

  it("re-key key pair rejects one-way link", async () => {
    const { owner } = await setup({ owner: OWNER_POLICY });
    const first = await createPair(owner, "first-public");
    const second = await createPair(owner, "second-public");
    await relinkPublicKey(owner, first.privateUid, first.publicUid, second.publicUid);
    const before = await linksOf(owner, second.publicUid);

    const rekeyed = await owner("ReKeyKeyPair", [
      text("PrivateKeyUniqueIdentifier", first.privateUid),
    ]);

    assert.equal(resultReason(rekeyed), "InvalidField");
    const message = textOf(child(rekeyed, "ResultMessage")!);
    assert.ok(message.includes("Private Key Link"), message);
    assert.deepEqual(await linksOf(owner, second.publicUid), before);
    assert.deepEqual(await linksOf(owner, first.privateUid), [`PublicKeyLink:${second.publicUid}`]);
  });

  it("register cannot rotate other role's key", async () => {
    const policies: Record<string, string> = {
      owner: OWNER_POLICY,
      app: `path "kmip/register" { capabilities = ["create"] }`,
    };
    const { transit, owner, app } = await setup(policies);
    const ownerKey = await createAes(owner, "owner-aes");

    const denied = await registerAes(app, [link("ReplacedObjectLink", ownerKey)]);

    assert.equal(resultReason(denied), "PermissionDenied");
    const message = textOf(child(denied, "ResultMessage")!);
    assert.ok(message.includes(`kmip/re-key/${ownerKey}`), message);
    assert.equal((await transit.readKey(ownerKey)).latestVersion, 1);
    assert.deepEqual(await linksOf(owner, ownerKey), []);
  });

  it("register rotates key with re-key grant", async () => {
    const policies: Record<string, string> = {
      owner: OWNER_POLICY,
      app: `path "kmip/register" { capabilities = ["create"] }`,
    };
    const { transit, owner, app } = await setup(policies);
    const ownerKey = await createAes(owner, "owner-aes");
    policies.app += `
path "kmip/re-key/${ownerKey}" { capabilities = ["create"] }`;

    const registered = await registerAes(app, [link("ReplacedObjectLink", ownerKey)]);

    assert.equal(resultStatus(registered), "Success");
    assert.equal((await transit.readKey(ownerKey)).latestVersion, 2);
  });

  it("locate lists only readable objects", async () => {
    const { owner, app } = await setup({
      owner: OWNER_POLICY,
      app: `path "kmip/locate" { capabilities = ["list"] }`,
    });
    await createPair(owner, "owner-secret-name");

    const located = await app("Locate", [
      struct("Attributes", [nameAttribute("owner-secret-name")]),
    ]);

    assert.equal(resultStatus(located), "Success");
    assert.deepEqual(
      children(child(located, "ResponsePayload") as StructureItem, "UniqueIdentifier"),
      [],
    );
  });

  it("locate pages over readable objects", async () => {
    const policies: Record<string, string> = {
      owner: OWNER_POLICY,
      app: `path "kmip/locate" { capabilities = ["list"] }`,
    };
    const { owner, app } = await setup(policies);
    const uids: string[] = [];
    for (const name of ["aes-1", "aes-2", "aes-3", "aes-4"])
      uids.push(await createAes(owner, name));
    // The app role may read the first and third keys only.
    policies.app += `
path "kmip/get-attributes/${uids[0]}" { capabilities = ["read"] }
path "kmip/get-attributes/${uids[2]}" { capabilities = ["read"] }`;
    const bySymmetricKey = struct("Attributes", [enumItem("ObjectType", "SymmetricKey")]);

    assert.deepEqual(await locateUids(app, [bySymmetricKey]), [uids[2], uids[0]]);
    assert.deepEqual(await locateUids(app, [bySymmetricKey, integer("MaximumItems", 1)]), [
      uids[2],
    ]);
    const paged = payloadOf(
      await app("Locate", [bySymmetricKey, integer("OffsetItems", 1), integer("MaximumItems", 1)]),
    );
    assert.equal(integerOf(child(paged, "LocatedItems")!), 2);
    assert.deepEqual(children(paged, "UniqueIdentifier").map(textOf), [uids[0]]);
    assert.equal((await locateUids(owner, [bySymmetricKey])).length, 4);
  });
});
