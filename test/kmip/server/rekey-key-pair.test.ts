import assert from "node:assert/strict";
import { createPublicKey, type KeyObject, verify } from "node:crypto";
import { describe, it } from "node:test";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  bytes,
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  tag,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import { KMIP_OBJECTS_PREFIX, KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import {
  activeSince,
  call,
  newDispatcher,
  payloadOf,
  requestMessage,
  resultReason,
  send,
} from "./helpers.ts";

const SIGN = 1;
const VERIFY = 2;
const MOUNT = "kmip-keys";

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

function privateId(uid: string): KmipItem {
  return text("PrivateKeyUniqueIdentifier", uid);
}

function nameItem(value: string): KmipItem {
  return struct("Name", [
    text("NameValue", value),
    enumItem("NameType", "UninterpretedTextString"),
  ]);
}

interface Pair {
  privateUid: string;
  publicUid: string;
}

function pairOf(payload: StructureItem): Pair {
  return {
    privateUid: textOf(child(payload, "PrivateKeyUniqueIdentifier")!),
    publicUid: textOf(child(payload, "PublicKeyUniqueIdentifier")!),
  };
}

async function createPair(
  dispatcher: KmipDispatcher,
  algorithm: string,
  length: number,
  names: { privateName?: string; publicName?: string } = {},
): Promise<Pair> {
  const payload = payloadOf(
    await call(dispatcher, "CreateKeyPair", [
      struct("CommonAttributes", [
        enumItem("CryptographicAlgorithm", algorithm),
        integer("CryptographicLength", length),
        activeSince(),
      ]),
      struct("PrivateKeyAttributes", [
        integer("CryptographicUsageMask", SIGN),
        ...(names.privateName === undefined ? [] : [nameItem(names.privateName)]),
      ]),
      struct("PublicKeyAttributes", [
        integer("CryptographicUsageMask", VERIFY),
        ...(names.publicName === undefined ? [] : [nameItem(names.publicName)]),
      ]),
    ]),
  );
  return pairOf(payload);
}

async function attributesOf(dispatcher: KmipDispatcher, uid: string): Promise<StructureItem> {
  return child(
    payloadOf(await call(dispatcher, "GetAttributes", [id(uid)])),
    "Attributes",
  ) as StructureItem;
}

async function links(dispatcher: KmipDispatcher, uid: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const link of children(await attributesOf(dispatcher, uid), "Link") as StructureItem[]) {
    found[enumName(child(link, "LinkType")!)] = textOf(child(link, "LinkedObjectIdentifier")!);
  }
  return found;
}

async function names(dispatcher: KmipDispatcher, uid: string): Promise<string[]> {
  return (children(await attributesOf(dispatcher, uid), "Name") as StructureItem[]).map((name) =>
    textOf(child(name, "NameValue")!),
  );
}

/** Returns the public key that KMIP Get returns, in X.509 format. */
async function publicKeyOf(dispatcher: KmipDispatcher, uid: string): Promise<KeyObject> {
  const get = payloadOf(
    await call(dispatcher, "Get", [id(uid), enumItem("KeyFormatType", "X_509")]),
  );
  const block = child(child(get, "PublicKey") as StructureItem, "KeyBlock") as StructureItem;
  const der = Buffer.from(
    child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!.value as Uint8Array,
  );
  return createPublicKey({ key: der, format: "der", type: "spki" });
}

/** Signs `input` through KMIP Sign with SHA-256 and returns the signature. */
async function kmipSign(dispatcher: KmipDispatcher, uid: string, input: Buffer): Promise<Buffer> {
  const signed = payloadOf(
    await call(dispatcher, "Sign", [
      id(uid),
      struct("CryptographicParameters", [enumItem("HashingAlgorithm", "SHA_256")]),
      bytes("Data", input),
    ]),
  );
  return Buffer.from(child(signed, "SignatureData")!.value as Uint8Array);
}

function exported(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" });
}

/** Builds a KMIP dispatcher whose objects' keys are managed keys of transit mount `kmip-keys`. */
function bridged() {
  const barrier = new MemoryBarrier();
  const transit = new TransitService({ barrier, mount: MOUNT });
  const mounts: KmipKeyMounts = {
    mount: MOUNT,
    async keyStore(path) {
      assert.equal(path, MOUNT);
      return transit.keyStore;
    },
  };
  const store = new KmipObjectStore(barrier, { managedKeys: new KmipManagedKeys(mounts) });
  return { barrier, transit, dispatcher: new KmipDispatcher({ store }) };
}

function storedRecord(barrier: MemoryBarrier, uid: string): Record<string, unknown> {
  const value = barrier.values.get(KMIP_OBJECTS_PREFIX + uid);
  assert.ok(value, `no record for ${uid}`);
  return JSON.parse(Buffer.from(value).toString("utf8")) as Record<string, unknown>;
}

describe("KMIP Re-key Key Pair", () => {
  for (const [algorithm, length] of [
    ["RSA", 2048],
    ["EC", 256],
  ] as const) {
    it(`${algorithm}-${length} pair is replaced and linked`, async () => {
      const dispatcher = newDispatcher();
      const old = await createPair(dispatcher, algorithm, length, {
        privateName: `${algorithm}-signing`,
        publicName: `${algorithm}-verifying`,
      });
      const created = pairOf(
        payloadOf(
          await call(dispatcher, "ReKeyKeyPair", [
            privateId(old.privateUid),
            struct("CommonAttributes", [activeSince()]),
          ]),
        ),
      );
      assert.notEqual(created.privateUid, old.privateUid);
      assert.notEqual(created.publicUid, old.publicUid);

      assert.deepEqual(await links(dispatcher, created.privateUid), {
        ReplacedObjectLink: old.privateUid,
        PublicKeyLink: created.publicUid,
      });
      assert.deepEqual(await links(dispatcher, created.publicUid), {
        ReplacedObjectLink: old.publicUid,
        PrivateKeyLink: created.privateUid,
      });
      assert.deepEqual(await links(dispatcher, old.privateUid), {
        PublicKeyLink: old.publicUid,
        ReplacementObjectLink: created.privateUid,
      });
      assert.deepEqual(await links(dispatcher, old.publicUid), {
        PrivateKeyLink: old.privateUid,
        ReplacementObjectLink: created.publicUid,
      });

      assert.deepEqual(await names(dispatcher, created.privateUid), [`${algorithm}-signing`]);
      assert.deepEqual(await names(dispatcher, created.publicUid), [`${algorithm}-verifying`]);
      assert.deepEqual(await names(dispatcher, old.privateUid), []);
      assert.deepEqual(await names(dispatcher, old.publicUid), []);

      const attributes = await attributesOf(dispatcher, created.privateUid);
      assert.equal(enumName(child(attributes, "CryptographicAlgorithm")!), algorithm);
      assert.equal(child(attributes, "CryptographicLength")!.value, length);
      assert.equal(child(attributes, "CryptographicUsageMask")!.value, SIGN);
      assert.equal(enumName(child(attributes, "State")!), "Active");

      const oldPublic = await publicKeyOf(dispatcher, old.publicUid);
      const newPublic = await publicKeyOf(dispatcher, created.publicUid);
      assert.equal(newPublic.asymmetricKeyType, oldPublic.asymmetricKeyType);
      assert.deepEqual(newPublic.asymmetricKeyDetails, oldPublic.asymmetricKeyDetails);
      assert.notDeepEqual(exported(newPublic), exported(oldPublic));

      const input = Buffer.from("signed by the new private key");
      const signature = await kmipSign(dispatcher, created.privateUid, input);
      assert.ok(verify("sha256", input, newPublic, signature));
      assert.equal(verify("sha256", input, oldPublic, signature), false);
    });
  }

  it("accepts 1.x request with ID Placeholder", async () => {
    const dispatcher = newDispatcher();
    const items = await send(
      dispatcher,
      requestMessage(
        [1, 4],
        [
          [
            "CreateKeyPair",
            [
              struct("CommonTemplateAttribute", [
                struct("Attribute", [
                  text("AttributeName", "Cryptographic Algorithm"),
                  { ...enumItem("CryptographicAlgorithm", "EC"), tag: tag("AttributeValue") },
                ]),
                struct("Attribute", [
                  text("AttributeName", "Cryptographic Length"),
                  integer("AttributeValue", 256),
                ]),
              ]),
            ],
          ],
          ["ReKeyKeyPair", [{ tag: tag("Offset"), type: "Interval", value: 0 }]],
          ["GetAttributes", []],
        ],
      ),
    );
    const old = pairOf(payloadOf(items[0]!));
    const created = pairOf(payloadOf(items[1]!));
    assert.notEqual(created.privateUid, old.privateUid);
    // The ID Placeholder is the new private key, so Get Attributes without an identifier reads it.
    assert.equal(
      textOf(child(payloadOf(items[2]!), "UniqueIdentifier")!),
      created.privateUid,
      "ID Placeholder",
    );
    // An Offset of 0 activates the new keys at once.
    const attributes = await attributesOf(dispatcher, created.privateUid);
    assert.equal(enumName(child(attributes, "State")!), "Active");
  });

  it("is listed by Query from 1.1", async () => {
    const dispatcher = newDispatcher();
    for (const [version, listed] of [
      [[1, 0], false],
      [[1, 1], true],
      [[2, 1], true],
    ] as const) {
      const payload = payloadOf(
        await call(
          dispatcher,
          "Query",
          [enumItem("QueryFunction", "QueryOperations")],
          [...version],
        ),
      );
      const operations = children(payload, "Operation").map((item) => enumName(item));
      assert.equal(operations.includes("ReKeyKeyPair"), listed, `version ${version.join(".")}`);
    }
  });

  it("rejects a symmetric key", async () => {
    const dispatcher = newDispatcher();
    const created = payloadOf(
      await call(dispatcher, "Create", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [
          enumItem("CryptographicAlgorithm", "AES"),
          integer("CryptographicLength", 256),
        ]),
      ]),
    );
    const uid = textOf(child(created, "UniqueIdentifier")!);
    const result = await call(dispatcher, "ReKeyKeyPair", [privateId(uid)]);
    assert.equal(resultReason(result), "InvalidObjectType");
  });

  it("rejects a public key", async () => {
    const dispatcher = newDispatcher();
    const pair = await createPair(dispatcher, "EC", 256);
    const result = await call(dispatcher, "ReKeyKeyPair", [privateId(pair.publicUid)]);
    assert.equal(resultReason(result), "InvalidObjectType");
  });

  it("rejects a pair re-keyed already", async () => {
    const dispatcher = newDispatcher();
    const pair = await createPair(dispatcher, "EC", 256);
    payloadOf(await call(dispatcher, "ReKeyKeyPair", [privateId(pair.privateUid)]));
    const again = await call(dispatcher, "ReKeyKeyPair", [privateId(pair.privateUid)]);
    assert.equal(resultReason(again), "WrongKeyLifecycleState");
  });

  it("rejects a Name another object has", async () => {
    const dispatcher = newDispatcher();
    await createPair(dispatcher, "EC", 256, { privateName: "taken" });
    const pair = await createPair(dispatcher, "EC", 256);
    const result = await call(dispatcher, "ReKeyKeyPair", [
      privateId(pair.privateUid),
      struct("PrivateKeyAttributes", [nameItem("taken")]),
    ]);
    assert.equal(resultReason(result), "NonUniqueNameAttribute");
    assert.equal((await links(dispatcher, pair.privateUid)).ReplacementObjectLink, undefined);
  });

  it("rejects another key size", async () => {
    const dispatcher = newDispatcher();
    const pair = await createPair(dispatcher, "RSA", 2048);
    const result = await call(dispatcher, "ReKeyKeyPair", [
      privateId(pair.privateUid),
      struct("CommonAttributes", [integer("CryptographicLength", 3072)]),
    ]);
    assert.equal(resultReason(result), "InvalidField");
  });

  it("needs the HSM for a pair held there", async () => {
    const barrier = new MemoryBarrier();
    const pair = await createPair(newDispatcher(barrier), "EC", 256);
    // A record as a pair generated in the HSM stores it, made without a token.
    const key = KMIP_OBJECTS_PREFIX + pair.privateUid;
    const record = JSON.parse(Buffer.from(barrier.values.get(key)!).toString("utf8"));
    record.hsmObject = { label: "keyward-test", id: "01" };
    barrier.values.set(key, new Uint8Array(Buffer.from(JSON.stringify(record))));
    // This server has no HSM, so it cannot generate the replacement there.
    const result = await call(newDispatcher(barrier), "ReKeyKeyPair", [privateId(pair.privateUid)]);
    assert.equal(resultReason(result), "GeneralFailure");
    assert.equal(barrier.values.size, 2);
  });

  it("adds a managed key version", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const old = await createPair(dispatcher, "RSA", 2048);
    const created = pairOf(
      payloadOf(
        await call(dispatcher, "ReKeyKeyPair", [
          privateId(old.privateUid),
          struct("CommonAttributes", [activeSince()]),
        ]),
      ),
    );
    assert.deepEqual(await transit.listKeys(), [old.privateUid]);
    const info = await transit.readKey(old.privateUid);
    assert.equal(info.latestVersion, 2);
    assert.equal(info.state, "active");
    for (const uid of [created.privateUid, created.publicUid]) {
      const ref = storedRecord(barrier, uid).managedKey as Record<string, unknown>;
      assert.equal(ref.name, old.privateUid, uid);
      assert.equal(ref.version, 2, uid);
    }
    assert.equal(
      (await links(dispatcher, old.privateUid)).ReplacementObjectLink,
      created.privateUid,
    );

    // Transit signs with version 2, which the new public key verifies.
    const input = Buffer.from("signed by transit");
    const signed = await transit.sign(
      old.privateUid,
      { input: input.toString("base64") },
      { signatureAlgorithm: "pkcs1v15" },
    );
    const [, version, encoded] = signed.value.signature.split(":");
    assert.equal(version, "v2");
    const signature = Buffer.from(encoded!, "base64");
    assert.ok(verify("sha256", input, await publicKeyOf(dispatcher, created.publicUid), signature));
    assert.equal(
      verify("sha256", input, await publicKeyOf(dispatcher, old.publicUid), signature),
      false,
    );
  });
});
