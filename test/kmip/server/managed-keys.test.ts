import assert from "node:assert/strict";
import {
  createDecipheriv,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
} from "node:crypto";
import { describe, it } from "node:test";
import { resolveServerConfig } from "../../../src/config.ts";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KeyStore } from "../../../src/engines/transit/store.ts";
import { isKeywardError, KeywardError } from "../../../src/errors.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  boolean,
  bytes,
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "../../../src/kmip/server/managed-keys.ts";
import {
  KMIP_OBJECTS_PREFIX,
  type KmipManagedKeyRef,
  KmipObjectStore,
} from "../../../src/kmip/server/object-store.ts";
import { replaceAttribute, scalarAttribute } from "../../../src/kmip/server/objects.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import {
  activeSince,
  call,
  payloadOf,
  requestMessage,
  resultReason,
  resultStatus,
  send,
} from "./helpers.ts";

const ENCRYPT = 4;
const DECRYPT = 8;
const SIGN = 1;
const VERIFY = 2;
const MOUNT = "kmip-keys";

/** Returns a managed-key reference without its version's creation time, which differs per run. */
function withoutTime(ref: unknown): Omit<KmipManagedKeyRef, "createdAt"> | undefined {
  if (ref === undefined) return undefined;
  const { createdAt: _createdAt, ...rest } = ref as KmipManagedKeyRef;
  return rest;
}

/**
 * Builds a KMIP dispatcher whose objects' keys are managed keys of transit
 * mount `kmip`, over one barrier. `beforeUpdate`, when given, runs as each
 * KMIP change of a managed key starts, before the change takes the key's
 * lock: the place where a transit rotation can slip in.
 */
function bridged(
  barrier = new MemoryBarrier(),
  beforeUpdate?: (transit: TransitService, name: string) => Promise<void>,
) {
  const transit = new TransitService({ barrier, mount: MOUNT });
  const keyStore =
    beforeUpdate === undefined
      ? transit.keyStore
      : new Proxy(transit.keyStore, {
          get(target, property) {
            if (property === "update") {
              return async (name: string, change: Parameters<KeyStore["update"]>[1]) => {
                await beforeUpdate(transit, name);
                return target.update(name, change);
              };
            }
            const value = Reflect.get(target, property, target);
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
  const mounts: KmipKeyMounts = {
    mount: MOUNT,
    async keyStore(path) {
      assert.equal(path, MOUNT);
      return keyStore;
    },
  };
  const store = new KmipObjectStore(barrier, { managedKeys: new KmipManagedKeys(mounts) });
  return { barrier, transit, store, dispatcher: new KmipDispatcher({ store }) };
}

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

async function createAes(
  dispatcher: KmipDispatcher,
  extra: KmipItem[] = [],
  bits = 256,
): Promise<string> {
  const payload = payloadOf(
    await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", bits),
        integer("CryptographicUsageMask", ENCRYPT | DECRYPT),
        ...extra,
      ]),
    ]),
  );
  return textOf(child(payload, "UniqueIdentifier")!);
}

async function createPair(
  dispatcher: KmipDispatcher,
  algorithm: string,
  length: number,
): Promise<{ privateUid: string; publicUid: string }> {
  const pair = payloadOf(
    await call(dispatcher, "CreateKeyPair", [
      struct("CommonAttributes", [
        enumItem("CryptographicAlgorithm", algorithm),
        integer("CryptographicLength", length),
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

async function kmipState(dispatcher: KmipDispatcher, uid: string): Promise<string> {
  const attributes = child(
    payloadOf(await call(dispatcher, "GetAttributes", [id(uid)])),
    "Attributes",
  ) as StructureItem;
  return enumName(child(attributes, "State")!);
}

/** Returns the Link attributes of an object as `LinkType -> identifier`. */
async function links(dispatcher: KmipDispatcher, uid: string): Promise<Record<string, string>> {
  const attributes = child(
    payloadOf(await call(dispatcher, "GetAttributes", [id(uid)])),
    "Attributes",
  ) as StructureItem;
  const found: Record<string, string> = {};
  for (const link of children(attributes, "Link") as StructureItem[]) {
    found[enumName(child(link, "LinkType")!)] = textOf(child(link, "LinkedObjectIdentifier")!);
  }
  return found;
}

/** Returns the key bytes that KMIP Get returns (Raw format). */
async function kmipKeyBytes(dispatcher: KmipDispatcher, uid: string): Promise<Buffer> {
  const payload = payloadOf(await call(dispatcher, "Get", [id(uid)]));
  const block = child(child(payload, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
  const value = child(block, "KeyValue") as StructureItem;
  return Buffer.from(child(value, "KeyMaterial")!.value as Uint8Array);
}

async function revoke(dispatcher: KmipDispatcher, uid: string, code = "CessationOfOperation") {
  payloadOf(
    await call(dispatcher, "Revoke", [
      id(uid),
      struct("RevocationReason", [enumItem("RevocationReasonCode", code)]),
    ]),
  );
}

/** Returns the KeywardError code a promise rejects with. */
async function errorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isKeywardError(error)) return error.code;
    throw error;
  }
  assert.fail("expected a KeywardError");
}

/** Reads the stored JSON record of a KMIP object. */
function storedRecord(barrier: MemoryBarrier, uid: string): Record<string, unknown> {
  const value = barrier.values.get(KMIP_OBJECTS_PREFIX + uid);
  assert.ok(value, `no record for ${uid}`);
  return JSON.parse(Buffer.from(value).toString("utf8")) as Record<string, unknown>;
}

describe("KMIP objects as managed keys", () => {
  it("AES key is a transit key", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);

    const info = await transit.readKey(uid);
    assert.equal(info.type, "aes256-gcm96");
    assert.equal(info.state, "active");
    assert.equal(info.exportable, true);
    assert.deepEqual(await transit.listKeys(), [uid]);

    // One copy of the material: the transit key's, which KMIP Get returns.
    const exported = await transit.exportKey(uid, "encryption-key", "1");
    const material = Buffer.from(exported.value.keys["1"]!, "base64");
    assert.deepEqual(await kmipKeyBytes(dispatcher, uid), material);
    const record = storedRecord(barrier, uid);
    assert.deepEqual(withoutTime(record.managedKey), { mount: MOUNT, name: uid, version: 1 });
    assert.equal(typeof (record.managedKey as KmipManagedKeyRef | undefined)?.createdAt, "string");
    const recordText = Buffer.from(barrier.values.get(KMIP_OBJECTS_PREFIX + uid)!).toString();
    const contentBytes = Buffer.from(record.content as string, "base64");
    assert.equal(contentBytes.includes(material), false, "the record holds the key material");
    assert.equal(recordText.includes(material.toString("base64")), false);

    // Transit's own format through transit.
    const plaintext = Buffer.from("through transit").toString("base64");
    const encrypted = await transit.encrypt(uid, { plaintext });
    const decrypted = await transit.decrypt(uid, { ciphertext: encrypted.value.ciphertext });
    assert.equal(decrypted.value.plaintext, plaintext);
  });

  it("KMIP AES-GCM decrypts with transit's key", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()], 128);
    assert.equal((await transit.readKey(uid)).type, "aes128-gcm96");
    const iv = randomBytes(12);
    const plaintext = Buffer.from("encrypted by KMIP");
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [
        id(uid),
        struct("CryptographicParameters", [
          enumItem("BlockCipherMode", "GCM"),
          integer("TagLength", 16),
        ]),
        bytes("Data", plaintext),
        bytes("IVCounterNonce", iv),
      ]),
    );
    const exported = await transit.exportKey(uid, "encryption-key", "1");
    const decipher = createDecipheriv(
      "aes-128-gcm",
      Buffer.from(exported.value.keys["1"]!, "base64"),
      iv,
    );
    decipher.setAuthTag(
      Buffer.from(child(encrypted, "AuthenticatedEncryptionTag")!.value as Uint8Array),
    );
    const data = Buffer.from(child(encrypted, "Data")!.value as Uint8Array);
    assert.deepEqual(Buffer.concat([decipher.update(data), decipher.final()]), plaintext);
  });

  it("sensitive key is not exportable", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince(), boolean("Sensitive", true)]);
    assert.equal((await transit.readKey(uid)).exportable, false);
    assert.equal(await errorCode(transit.exportKey(uid, "encryption-key")), "invalid_state");
    assert.equal(await errorCode(transit.configureKey(uid, { exportable: true })), "invalid_state");
    const notExtractable = await createAes(dispatcher, [
      activeSince(),
      boolean("Extractable", false),
    ]);
    assert.equal((await transit.readKey(notExtractable)).exportable, false);
  });

  it("KMIP lifecycle moves the managed key", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher);
    assert.equal(await kmipState(dispatcher, uid), "PreActive");
    assert.equal((await transit.readKey(uid)).state, "pre-active");

    payloadOf(await call(dispatcher, "Activate", [id(uid)]));
    assert.equal((await transit.readKey(uid)).state, "active");

    await revoke(dispatcher, uid);
    assert.equal((await transit.readKey(uid)).state, "deactivated");
    assert.equal(await kmipState(dispatcher, uid), "Deactivated");

    payloadOf(await call(dispatcher, "Destroy", [id(uid)]));
    assert.equal((await transit.readKey(uid)).state, "destroyed");
    assert.equal(await kmipState(dispatcher, uid), "Destroyed");
    assert.equal(resultReason(await call(dispatcher, "Get", [id(uid)])), "ObjectDestroyed");
  });

  it("revoke of a pre-active key deactivates it", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher);
    await revoke(dispatcher, uid);
    assert.equal((await transit.readKey(uid)).state, "deactivated");
    assert.equal(await kmipState(dispatcher, uid), "Deactivated");
  });

  it("compromise reaches DestroyedCompromised", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await revoke(dispatcher, uid, "KeyCompromise");
    assert.equal((await transit.readKey(uid)).state, "compromised");
    assert.equal(await kmipState(dispatcher, uid), "Compromised");
    payloadOf(await call(dispatcher, "Destroy", [id(uid)]));
    assert.equal((await transit.readKey(uid)).state, "destroyed");
    assert.equal(await kmipState(dispatcher, uid), "DestroyedCompromised");
  });

  it("transit state change shows in KMIP", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);

    await transit.setKeyState(uid, "suspended");
    assert.equal(await kmipState(dispatcher, uid), "PreActive");
    const suspended = await call(dispatcher, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]);
    assert.equal(resultReason(suspended), "WrongKeyLifecycleState");
    payloadOf(await call(dispatcher, "Activate", [id(uid)]));
    assert.equal((await transit.readKey(uid)).state, "active");

    await transit.setKeyState(uid, "deactivated");
    assert.equal(await kmipState(dispatcher, uid), "Deactivated");
    const encrypt = await call(dispatcher, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]);
    assert.equal(resultReason(encrypt), "WrongKeyLifecycleState");

    await transit.setKeyState(uid, "compromised");
    assert.equal(await kmipState(dispatcher, uid), "Compromised");
    await transit.setKeyState(uid, "destroyed");
    assert.equal(await kmipState(dispatcher, uid), "DestroyedCompromised");
  });

  it("batch undo restores the managed key", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Activate", [id(uid)]],
          ["Get", [id("no-such-object")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.equal(resultStatus(items[0]!), "OperationUndone");
    assert.equal((await transit.readKey(uid)).state, "pre-active");
    assert.equal(await kmipState(dispatcher, uid), "PreActive");
  });

  const revokeItem = (uid: string): readonly [string, KmipItem[]] => [
    "Revoke",
    [
      id(uid),
      struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
    ],
  ];

  it("undo keeps an earlier rotation", async () => {
    let updates = 0;
    const { transit, dispatcher } = bridged(undefined, async (service, name) => {
      if (updates++ === 0) await service.rotateKey(name);
    });
    const uid = await createAes(dispatcher, [activeSince()]);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [revokeItem(uid), ["Get", [id("no-such-object")]]],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.equal(resultStatus(items[0]!), "OperationUndone");
    const key = await transit.readKey(uid);
    assert.equal(key.latestVersion, 2);
    assert.equal(key.state, "active");
  });

  it("undo skips a key rotated mid-batch", async () => {
    let updates = 0;
    const { transit, dispatcher } = bridged(undefined, async (service, name) => {
      if (updates++ === 1) await service.rotateKey(name);
    });
    const uid = await createAes(dispatcher, [activeSince()]);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["SetAttribute", [id(uid), struct("NewAttribute", [boolean("Extractable", false)])]],
          revokeItem(uid),
          ["Get", [id("no-such-object")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.equal(resultStatus(items[0]!), "OperationUndone");
    assert.equal(updates, 2);
    // Putting back the key as the first write found it would drop version 2.
    assert.equal((await transit.readKey(uid)).latestVersion, 2);
  });

  it("write keeps a transit state change", async () => {
    const { transit, store, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await store.exclusive(async (tx) => {
      const object = await tx.find(uid);
      assert.ok(object);
      // Transit suspends the key between the operation's read and its write.
      await transit.setKeyState(uid, "suspended");
      await tx.put(replaceAttribute(object, "Fresh", scalarAttribute("Fresh", "Boolean", false)));
    });
    assert.equal((await transit.readKey(uid)).state, "suspended");
    assert.equal(await kmipState(dispatcher, uid), "PreActive");
  });

  it("illegal KMIP transition is rejected", async () => {
    const { dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    const destroy = await call(dispatcher, "Destroy", [id(uid)]);
    assert.equal(resultReason(destroy), "WrongKeyLifecycleState");
    assert.equal(await kmipState(dispatcher, uid), "Active");
  });

  for (const [algorithm, length, type] of [
    ["RSA", 2048, "rsa-2048"],
    ["EC", 256, "ecdsa-p256"],
    ["EC", 384, "ecdsa-p384"],
  ] as const) {
    it(`${type} key pair is one transit key`, async () => {
      const { barrier, transit, dispatcher } = bridged();
      const { privateUid, publicUid } = await createPair(dispatcher, algorithm, length);
      const info = await transit.readKey(privateUid);
      assert.equal(info.type, type);
      assert.deepEqual(await transit.listKeys(), [privateUid]);
      assert.deepEqual(withoutTime(storedRecord(barrier, publicUid).managedKey), {
        mount: MOUNT,
        name: privateUid,
        version: 1,
      });

      const input = Buffer.from("signed by transit");
      // PKCS#1 v1.5 for RSA, because transit's default is PSS and KMIP's is PKCS#1 v1.5.
      const signed = await transit.sign(
        privateUid,
        { input: input.toString("base64") },
        algorithm === "RSA" ? { signatureAlgorithm: "pkcs1v15" } : {},
      );
      const signature = Buffer.from(signed.value.signature.split(":")[2]!, "base64");
      const get = payloadOf(
        await call(dispatcher, "Get", [id(publicUid), enumItem("KeyFormatType", "X_509")]),
      );
      const block = child(child(get, "PublicKey") as StructureItem, "KeyBlock") as StructureItem;
      const der = Buffer.from(
        child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!.value as Uint8Array,
      );
      const publicKey = createPublicKey({ key: der, format: "der", type: "spki" });
      assert.ok(verify("sha256", input, publicKey, signature));

      const kmipSigned = payloadOf(
        await call(dispatcher, "Sign", [
          id(privateUid),
          struct("CryptographicParameters", [enumItem("HashingAlgorithm", "SHA_256")]),
          bytes("Data", input),
        ]),
      );
      const kmipSignature = Buffer.from(child(kmipSigned, "SignatureData")!.value as Uint8Array);
      const verified = await transit.verify(
        privateUid,
        {
          input: input.toString("base64"),
          signature: `keyward:v1:${kmipSignature.toString("base64")}`,
        },
        algorithm === "RSA" ? { signatureAlgorithm: "pkcs1v15" } : {},
      );
      assert.equal(verified.value.valid, true);
    });
  }

  it("public key keeps its own state", async () => {
    const { transit, dispatcher } = bridged();
    const { privateUid, publicUid } = await createPair(dispatcher, "EC", 256);
    await revoke(dispatcher, publicUid);
    payloadOf(await call(dispatcher, "Destroy", [id(publicUid)]));
    assert.equal(await kmipState(dispatcher, publicUid), "Destroyed");
    assert.equal(await kmipState(dispatcher, privateUid), "Active");
    assert.equal((await transit.readKey(privateUid)).state, "active");
    await revoke(dispatcher, privateUid);
    assert.equal((await transit.readKey(privateUid)).state, "deactivated");
  });

  it("keeps every version in once one object is not extractable", async () => {
    const { transit, dispatcher } = bridged();
    const oldUid = await createAes(dispatcher, [activeSince()]);
    const rekeyed = payloadOf(await call(dispatcher, "ReKey", [id(oldUid)]));
    const newUid = textOf(child(rekeyed, "UniqueIdentifier")!);
    payloadOf(
      await call(dispatcher, "SetAttribute", [
        id(oldUid),
        struct("NewAttribute", [boolean("Extractable", false)]),
      ]),
    );
    assert.equal(await errorCode(transit.exportKey(oldUid, "encryption-key")), "invalid_state");
    // Making the replacement extractable again does not let the replaced version out.
    payloadOf(
      await call(dispatcher, "SetAttribute", [
        id(newUid),
        struct("NewAttribute", [boolean("Extractable", true)]),
      ]),
    );
    assert.equal(await errorCode(transit.exportKey(oldUid, "encryption-key")), "invalid_state");
  });

  it("destroys no replaced object through its replacement", async () => {
    const { transit, dispatcher } = bridged();
    const oldUid = await createAes(dispatcher, [activeSince()]);
    const rekeyed = payloadOf(await call(dispatcher, "ReKey", [id(oldUid)]));
    const newUid = textOf(child(rekeyed, "UniqueIdentifier")!);
    const destroyed = await call(dispatcher, "Destroy", [id(newUid)]);
    assert.equal(resultReason(destroyed), "WrongKeyLifecycleState");
    assert.equal(await kmipState(dispatcher, oldUid), "Active");
    assert.equal((await transit.readKey(oldUid)).latestVersion, 2);
    const again = await call(dispatcher, "ReKey", [id(oldUid)]);
    assert.equal(resultReason(again), "WrongKeyLifecycleState");
  });

  it("shows a trimmed version as destroyed", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await transit.rotateKey(uid);
    await transit.rotateKey(uid);
    await transit.configureKey(uid, { minDecryptionVersion: 3, minEncryptionVersion: 3 });
    await transit.trimKey(uid, 3);
    assert.equal(await kmipState(dispatcher, uid), "Destroyed");
  });

  it("re-key adds a version and links objects", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const oldUid = await createAes(dispatcher, [activeSince()]);
    const rekeyed = payloadOf(await call(dispatcher, "ReKey", [id(oldUid)]));
    const newUid = textOf(child(rekeyed, "UniqueIdentifier")!);

    assert.deepEqual(await transit.listKeys(), [oldUid]);
    const info = await transit.readKey(oldUid);
    assert.equal(info.latestVersion, 2);
    assert.deepEqual(withoutTime(storedRecord(barrier, newUid).managedKey), {
      mount: MOUNT,
      name: oldUid,
      version: 2,
    });
    assert.equal((await links(dispatcher, newUid)).ReplacedObjectLink, oldUid);
    assert.equal((await links(dispatcher, oldUid)).ReplacementObjectLink, newUid);

    // The replacement takes the old key's Activation Date, so it is Active
    // at once and transit's key stays usable.
    assert.equal(await kmipState(dispatcher, newUid), "Active");
    assert.equal(await kmipState(dispatcher, oldUid), "Active");
    assert.equal(info.state, "active");

    const exported = await transit.exportKey(oldUid, "encryption-key");
    assert.deepEqual(
      await kmipKeyBytes(dispatcher, oldUid),
      Buffer.from(exported.value.keys["1"]!, "base64"),
    );
    assert.deepEqual(
      await kmipKeyBytes(dispatcher, newUid),
      Buffer.from(exported.value.keys["2"]!, "base64"),
    );

    // The replaced object's lifecycle is its own, and its Destroy erases version 1.
    await revoke(dispatcher, oldUid);
    assert.equal(await kmipState(dispatcher, oldUid), "Deactivated");
    assert.equal((await transit.readKey(oldUid)).state, "active");
    payloadOf(await call(dispatcher, "Destroy", [id(oldUid)]));
    assert.deepEqual(Object.keys((await transit.readKey(oldUid)).keys), ["2"]);
    assert.equal(await kmipState(dispatcher, newUid), "Active");
    assert.equal(await kmipState(dispatcher, oldUid), "Destroyed");
  });

  it("re-key of a deactivated key is rejected", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await revoke(dispatcher, uid);
    assert.equal(
      resultReason(await call(dispatcher, "ReKey", [id(uid)])),
      "WrongKeyLifecycleState",
    );
    assert.equal((await transit.readKey(uid)).latestVersion, 1);
  });

  it("transit rotate keeps the KMIP object's version", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await transit.rotateKey(uid);
    const exported = await transit.exportKey(uid, "encryption-key");
    assert.deepEqual(
      await kmipKeyBytes(dispatcher, uid),
      Buffer.from(exported.value.keys["1"]!, "base64"),
    );
    await transit.setKeyState(uid, "deactivated");
    assert.equal(await kmipState(dispatcher, uid), "Deactivated");
  });

  it("transit deletion waits for KMIP destroy", async () => {
    const { transit, dispatcher } = bridged();
    const uid = await createAes(dispatcher, [activeSince()]);
    await transit.configureKey(uid, { deletionAllowed: true });
    assert.equal(await errorCode(transit.scheduleDeletion(uid)), "deletion_not_allowed");
    const backup = await createAes(dispatcher, [activeSince()]);
    assert.equal(
      await errorCode(transit.configureKey(backup, { allowPlaintextBackup: true })),
      "invalid_state",
    );
    await revoke(dispatcher, uid);
    payloadOf(await call(dispatcher, "Destroy", [id(uid)]));
    const scheduled = await transit.scheduleDeletion(uid);
    assert.equal(scheduled.value.name, uid);
  });

  it("restart keeps keys and states", async () => {
    const barrier = new MemoryBarrier();
    const first = bridged(barrier);
    const uid = await createAes(first.dispatcher, [activeSince()]);
    const material = await kmipKeyBytes(first.dispatcher, uid);
    await revoke(first.dispatcher, uid);

    const second = bridged(barrier);
    assert.deepEqual(await kmipKeyBytes(second.dispatcher, uid), material);
    assert.equal(await kmipState(second.dispatcher, uid), "Deactivated");
    assert.equal((await second.transit.readKey(uid)).state, "deactivated");
  });

  it("old-form record keeps working", async () => {
    const barrier = new MemoryBarrier();
    const plain = new KmipDispatcher({ store: new KmipObjectStore(barrier) });
    const uid = await createAes(plain, [activeSince()]);
    const material = await kmipKeyBytes(plain, uid);

    const { transit, dispatcher } = bridged(barrier);
    assert.deepEqual(await kmipKeyBytes(dispatcher, uid), material);
    payloadOf(
      await call(dispatcher, "Encrypt", [
        id(uid),
        struct("CryptographicParameters", [
          enumItem("BlockCipherMode", "CBC"),
          enumItem("PaddingMethod", "PKCS5"),
        ]),
        bytes("Data", Buffer.from("old record")),
        bytes("IVCounterNonce", Buffer.alloc(16, 1)),
      ]),
    );
    await revoke(dispatcher, uid);
    assert.equal(await kmipState(dispatcher, uid), "Deactivated");
    assert.deepEqual(await transit.listKeys(), []);
    assert.equal(storedRecord(barrier, uid).managedKey, undefined);
  });

  it("other algorithms stay in the record", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const aes192 = await createAes(dispatcher, [activeSince()], 192);
    const registered = payloadOf(
      await call(dispatcher, "Register", [
        enumItem("ObjectType", "SecretData"),
        struct("Attributes", [integer("CryptographicUsageMask", 0)]),
        struct("SecretData", [
          enumItem("SecretDataType", "Password"),
          struct("KeyBlock", [
            enumItem("KeyFormatType", "Opaque"),
            struct("KeyValue", [bytes("KeyMaterial", Buffer.from("secret"))]),
          ]),
        ]),
      ]),
    );
    const secretUid = textOf(child(registered, "UniqueIdentifier")!);
    assert.deepEqual(await transit.listKeys(), []);
    assert.equal(storedRecord(barrier, aes192).managedKey, undefined);
    assert.equal(storedRecord(barrier, secretUid).managedKey, undefined);
  });

  it("registered AES key becomes a managed key", async () => {
    const { transit, dispatcher } = bridged();
    const key = randomBytes(16);
    const registered = payloadOf(
      await call(dispatcher, "Register", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [integer("CryptographicUsageMask", ENCRYPT), activeSince()]),
        struct("SymmetricKey", [
          struct("KeyBlock", [
            enumItem("KeyFormatType", "Raw"),
            struct("KeyValue", [bytes("KeyMaterial", key)]),
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", 128),
          ]),
        ]),
      ]),
    );
    const uid = textOf(child(registered, "UniqueIdentifier")!);
    assert.equal((await transit.readKey(uid)).type, "aes128-gcm96");
    assert.deepEqual(await kmipKeyBytes(dispatcher, uid), key);
  });

  it("registered RSA key keeps its bytes", async () => {
    const { barrier, transit, dispatcher } = bridged();
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const der = privateKey.export({ format: "der", type: "pkcs1" });
    const registered = payloadOf(
      await call(dispatcher, "Register", [
        enumItem("ObjectType", "PrivateKey"),
        struct("Attributes", [integer("CryptographicUsageMask", SIGN), activeSince()]),
        struct("PrivateKey", [
          struct("KeyBlock", [
            enumItem("KeyFormatType", "PKCS_1"),
            struct("KeyValue", [bytes("KeyMaterial", der)]),
            enumItem("CryptographicAlgorithm", "RSA"),
            integer("CryptographicLength", 2048),
          ]),
        ]),
      ]),
    );
    const uid = textOf(child(registered, "UniqueIdentifier")!);
    assert.equal((await transit.readKey(uid)).type, "rsa-2048");
    assert.ok(storedRecord(barrier, uid).managedKey);
    const get = payloadOf(await call(dispatcher, "Get", [id(uid)]));
    const block = child(child(get, "PrivateKey") as StructureItem, "KeyBlock") as StructureItem;
    assert.equal(enumName(child(block, "KeyFormatType")!), "PKCS_1");
    const material = child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!;
    assert.deepEqual(Buffer.from(material.value as Uint8Array), der);
  });

  it("unknown uid via transit is not found", async () => {
    const { transit } = bridged();
    assert.equal(
      await errorCode(transit.readKey("01a245ae-e783-7000-898e-52be367a1267")),
      "not_found",
    );
  });
});

describe("kmip_keys_mount setting", () => {
  it("defaults to kmip", () => {
    assert.equal(resolveServerConfig({ kmip_listen: "127.0.0.1" }).kmip?.keysMount, "kmip-keys");
  });

  it("accepts another mount path", () => {
    const config = resolveServerConfig({ kmip_listen: "127.0.0.1", kmip_keys_mount: "kmip-keys/" });
    assert.equal(config.kmip?.keysMount, "kmip-keys");
  });

  for (const [name, source] of [
    ["reserved path", { kmip_listen: "127.0.0.1", kmip_keys_mount: "sys" }],
    ["invalid path", { kmip_listen: "127.0.0.1", kmip_keys_mount: "a/b" }],
    ["path without listen", { kmip_keys_mount: "kmip-keys" }],
    ["the kmip path", { kmip_listen: "127.0.0.1", kmip_keys_mount: "kmip" }],
  ] as const) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => resolveServerConfig(source),
        (error: unknown) => error instanceof KeywardError && error.field === "kmip_keys_mount",
      );
    });
  }
});
