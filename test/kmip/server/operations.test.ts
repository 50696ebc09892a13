import assert from "node:assert/strict";
import { createCipheriv, createHmac } from "node:crypto";
import { describe, it } from "node:test";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import {
  boolean,
  bytes,
  child,
  children,
  dateTime,
  enumItem,
  enumName,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import {
  activeSince,
  call,
  newDispatcher,
  payloadOf,
  resultReason,
  resultStatus,
  uidOf,
} from "./helpers.ts";

const AES_KEY = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");

function nameAttribute(value: string): KmipItem {
  return struct("Name", [
    text("NameValue", value),
    enumItem("NameType", "UninterpretedTextString"),
  ]);
}

function usage(mask: number): KmipItem {
  return integer("CryptographicUsageMask", mask);
}

const ENCRYPT = 4;
const DECRYPT = 8;
const SIGN = 1;
const VERIFY = 2;
const MAC_GENERATE = 0x80;
const MAC_VERIFY = 0x100;

async function registerAes(
  dispatcher: ReturnType<typeof newDispatcher>,
  key: Buffer,
  mask: number,
  algorithm = "AES",
  activate = true,
  extra: readonly KmipItem[] = [],
): Promise<string> {
  const attributes: KmipItem[] = [usage(mask), ...extra];
  if (activate) attributes.push(activeSince());
  const payload = payloadOf(
    await call(dispatcher, "Register", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", attributes),
      struct("SymmetricKey", [
        struct("KeyBlock", [
          enumItem("KeyFormatType", "Raw"),
          struct("KeyValue", [bytes("KeyMaterial", key)]),
          enumItem("CryptographicAlgorithm", algorithm),
          integer("CryptographicLength", key.length * 8),
        ]),
      ]),
    ]),
  );
  return uidOf(payload);
}

describe("KMIP operations", () => {
  it("discover versions lists supported ones", async () => {
    const dispatcher = newDispatcher();
    const payload = payloadOf(await call(dispatcher, "DiscoverVersions", []));
    const versions = children(payload, "ProtocolVersion").map((item) => {
      const structure = item as StructureItem;
      return `${child(structure, "ProtocolVersionMajor")!.value}.${child(structure, "ProtocolVersionMinor")!.value}`;
    });
    assert.deepEqual(versions, ["2.1", "2.0", "1.4", "1.3", "1.2", "1.1", "1.0"]);
  });

  it("query lists operations per version", async () => {
    const dispatcher = newDispatcher();
    const query = [enumItem("QueryFunction", "QueryOperations")];
    const operations = async (version: [number, number]) =>
      children(payloadOf(await call(dispatcher, "Query", query, version)), "Operation").map(
        enumName,
      );
    const v10 = await operations([1, 0]);
    assert.ok(v10.includes("Create"));
    assert.ok(!v10.includes("Encrypt"));
    assert.ok(!v10.includes("DiscoverVersions"));
    const v21 = await operations([2, 1]);
    assert.ok(v21.includes("Encrypt"));
    assert.ok(v21.includes("SetAttribute"));
  });

  it("create stores a key behind the barrier", async () => {
    const barrier = new MemoryBarrier();
    const dispatcher = newDispatcher(barrier);
    const payload = payloadOf(
      await call(dispatcher, "Create", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [
          enumItem("CryptographicAlgorithm", "AES"),
          integer("CryptographicLength", 256),
          usage(ENCRYPT | DECRYPT),
          nameAttribute("disk-key"),
        ]),
      ]),
    );
    const uid = uidOf(payload);
    assert.ok(barrier.values.has(`kmip/objects/${uid}`));

    const got = payloadOf(await call(dispatcher, "Get", [text("UniqueIdentifier", uid)]));
    const block = child(child(got, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
    const material = child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!;
    assert.equal((material.value as Uint8Array).length, 32);
    assert.equal(enumName(child(block, "KeyFormatType")!), "Raw");
  });

  it("get converts to transparent format", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const got = payloadOf(
      await call(dispatcher, "Get", [
        text("UniqueIdentifier", uid),
        enumItem("KeyFormatType", "TransparentSymmetricKey"),
      ]),
    );
    const block = child(child(got, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
    assert.equal(enumName(child(block, "KeyFormatType")!), "TransparentSymmetricKey");
    const material = child(
      child(block, "KeyValue") as StructureItem,
      "KeyMaterial",
    ) as StructureItem;
    assert.deepEqual(Buffer.from(child(material, "Key")!.value as Uint8Array), AES_KEY);
  });

  it("register stores secret data and opaque objects", async () => {
    const dispatcher = newDispatcher();
    for (const [objectType, content] of [
      [
        "SecretData",
        struct("SecretData", [
          enumItem("SecretDataType", "Password"),
          struct("KeyBlock", [
            enumItem("KeyFormatType", "Opaque"),
            struct("KeyValue", [bytes("KeyMaterial", Buffer.from("hunter2"))]),
          ]),
        ]),
      ],
      [
        "OpaqueObject",
        struct("OpaqueObject", [
          // Opaque Data Type has only vendor-defined values.
          { tag: 0x420059, type: "Enumeration", value: 0x80000001 } as KmipItem,
          bytes("OpaqueDataValue", Buffer.from("blob")),
        ]),
      ],
    ] as const) {
      const uid = uidOf(
        payloadOf(
          await call(dispatcher, "Register", [
            enumItem("ObjectType", objectType),
            struct("Attributes", []),
            content,
          ]),
        ),
      );
      const got = payloadOf(await call(dispatcher, "Get", [text("UniqueIdentifier", uid)]));
      assert.equal(enumName(child(got, "ObjectType")!), objectType);
      assert.ok(child(got, objectType) !== undefined);
    }
  });

  for (const [name, attribute, reason] of [
    ["fail get of sensitive key", boolean("Sensitive", true), "Sensitive"],
    ["fail get of unextractable key", boolean("Extractable", false), "NotExtractable"],
  ] as const) {
    it(name, async () => {
      const dispatcher = newDispatcher();
      const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
      const id = text("UniqueIdentifier", uid);
      payloadOf(await call(dispatcher, "SetAttribute", [id, struct("NewAttribute", [attribute])]));
      const item = await call(dispatcher, "Get", [id]);
      assert.equal(resultReason(item), reason);
    });
  }

  it("get clears the fresh flag", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT, "AES", true, [
      boolean("Fresh", true),
    ]);
    const id = text("UniqueIdentifier", uid);
    payloadOf(await call(dispatcher, "Get", [id]));
    const attributes = child(
      payloadOf(await call(dispatcher, "GetAttributes", [id])),
      "Attributes",
    ) as StructureItem;
    assert.equal(child(attributes, "Fresh")?.value, false);
  });

  it("attributes render per protocol version", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const v2 = payloadOf(
      await call(dispatcher, "GetAttributes", [
        text("UniqueIdentifier", uid),
        { tag: 0x420141, type: "Enumeration", value: 0x42008d } as KmipItem,
      ]),
    );
    const attributes = child(v2, "Attributes") as StructureItem;
    assert.equal(enumName(child(attributes, "State")!), "Active");

    const v1 = payloadOf(
      await call(
        dispatcher,
        "GetAttributes",
        [text("UniqueIdentifier", uid), text("AttributeName", "State")],
        [1, 2],
      ),
    );
    const [attribute] = children(v1, "Attribute") as StructureItem[];
    assert.equal(textOf(child(attribute!, "AttributeName")!), "State");
    assert.equal(child(v1, "Attributes"), undefined);
  });

  it("attribute list omits newer attributes for 1.0", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const v10 = payloadOf(
      await call(dispatcher, "GetAttributeList", [text("UniqueIdentifier", uid)], [1, 0]),
    );
    const names = children(v10, "AttributeName").map(textOf);
    assert.ok(names.includes("State"));
    assert.ok(!names.includes("Original Creation Date"));
    assert.ok(!names.includes("Key Format Type"));
  });

  it("add modify delete and set attributes", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const id = text("UniqueIdentifier", uid);
    payloadOf(
      await call(dispatcher, "AddAttribute", [id, struct("NewAttribute", [nameAttribute("a")])]),
    );
    payloadOf(
      await call(dispatcher, "AddAttribute", [id, struct("NewAttribute", [nameAttribute("b")])]),
    );
    payloadOf(
      await call(dispatcher, "ModifyAttribute", [
        id,
        struct("CurrentAttribute", [nameAttribute("a")]),
        struct("NewAttribute", [nameAttribute("c")]),
      ]),
    );
    payloadOf(
      await call(dispatcher, "DeleteAttribute", [
        id,
        struct("CurrentAttribute", [nameAttribute("b")]),
      ]),
    );
    payloadOf(
      await call(dispatcher, "SetAttribute", [
        id,
        struct("NewAttribute", [text("ContactInformation", "ops")]),
      ]),
    );
    const attributes = child(
      payloadOf(await call(dispatcher, "GetAttributes", [id])),
      "Attributes",
    ) as StructureItem;
    const names = children(attributes, "Name").map((name) =>
      textOf(child(name as StructureItem, "NameValue")!),
    );
    assert.deepEqual(names, ["c"]);
    assert.equal(child(attributes, "ContactInformation")?.value, "ops");
  });

  it("fail modify of a read-only attribute", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const item = await call(dispatcher, "ModifyAttribute", [
      text("UniqueIdentifier", uid),
      struct("NewAttribute", [enumItem("CryptographicAlgorithm", "DES3")]),
    ]);
    assert.equal(resultStatus(item), "OperationFailed");
    assert.equal(resultReason(item), "AttributeReadOnly");
  });

  it("lifecycle follows SP 800-57 states", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT, "AES", false);
    const id = text("UniqueIdentifier", uid);
    const state = async () =>
      enumName(
        child(
          child(
            payloadOf(await call(dispatcher, "GetAttributes", [id])),
            "Attributes",
          ) as StructureItem,
          "State",
        )!,
      );
    assert.equal(await state(), "PreActive");
    payloadOf(await call(dispatcher, "Activate", [id]));
    assert.equal(await state(), "Active");
    const destroyActive = await call(dispatcher, "Destroy", [id]);
    assert.equal(resultReason(destroyActive), "WrongKeyLifecycleState");
    payloadOf(
      await call(dispatcher, "Revoke", [
        id,
        struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
      ]),
    );
    assert.equal(await state(), "Deactivated");
    payloadOf(await call(dispatcher, "Destroy", [id]));
    assert.equal(await state(), "Destroyed");
    const get = await call(dispatcher, "Get", [id]);
    assert.equal(resultReason(get), "ObjectDestroyed");
  });

  it("revoke for compromise marks compromised", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const id = text("UniqueIdentifier", uid);
    payloadOf(
      await call(dispatcher, "Revoke", [
        id,
        struct("RevocationReason", [enumItem("RevocationReasonCode", "KeyCompromise")]),
      ]),
    );
    payloadOf(await call(dispatcher, "Destroy", [id]));
    const attributes = child(
      payloadOf(await call(dispatcher, "GetAttributes", [id])),
      "Attributes",
    ) as StructureItem;
    assert.equal(enumName(child(attributes, "State")!), "DestroyedCompromised");
  });

  it("locate pages by offset and maximum", async () => {
    const dispatcher = newDispatcher();
    const created: string[] = [];
    for (let index = 0; index < 5; index++)
      created.push(await registerAes(dispatcher, AES_KEY, ENCRYPT));
    const page = payloadOf(
      await call(dispatcher, "Locate", [
        integer("MaximumItems", 2),
        integer("OffsetItems", 1),
        struct("Attributes", [enumItem("ObjectType", "SymmetricKey")]),
      ]),
    );
    assert.equal(child(page, "LocatedItems")?.value, 5);
    assert.deepEqual(children(page, "UniqueIdentifier").map(textOf), [created[3], created[2]]);
  });

  it("locate matches names exactly", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    payloadOf(
      await call(dispatcher, "AddAttribute", [
        text("UniqueIdentifier", uid),
        struct("NewAttribute", [nameAttribute("backup-key")]),
      ]),
    );
    const found = async (name: string) =>
      children(
        payloadOf(await call(dispatcher, "Locate", [struct("Attributes", [nameAttribute(name)])])),
        "UniqueIdentifier",
      ).map(textOf);
    assert.deepEqual(await found("backup-key"), [uid]);
    assert.deepEqual(await found("backup"), []);
  });

  it("encrypt and decrypt with AES-CBC padding", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT | DECRYPT);
    const iv = Buffer.alloc(16, 7);
    const parameters = struct("CryptographicParameters", [
      enumItem("BlockCipherMode", "CBC"),
      enumItem("PaddingMethod", "PKCS5"),
    ]);
    const plaintext = Buffer.from("seventeen bytes!!");
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        parameters,
        bytes("Data", plaintext),
        bytes("IVCounterNonce", iv),
      ]),
    );
    const ciphertext = Buffer.from(child(encrypted, "Data")!.value as Uint8Array);
    const cipher = createCipheriv("aes-128-cbc", AES_KEY, iv);
    assert.deepEqual(ciphertext, Buffer.concat([cipher.update(plaintext), cipher.final()]));
    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        text("UniqueIdentifier", uid),
        parameters,
        bytes("Data", ciphertext),
        bytes("IVCounterNonce", iv),
      ]),
    );
    assert.deepEqual(Buffer.from(child(decrypted, "Data")!.value as Uint8Array), plaintext);
  });

  it("encrypt with AES-GCM returns IV and tag", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT | DECRYPT);
    const parameters = struct("CryptographicParameters", [enumItem("BlockCipherMode", "GCM")]);
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        parameters,
        bytes("Data", Buffer.from("hello")),
      ]),
    );
    const iv = child(encrypted, "IVCounterNonce")!;
    const tag = child(encrypted, "AuthenticatedEncryptionTag")!;
    assert.equal((iv.value as Uint8Array).length, 12);
    assert.equal((tag.value as Uint8Array).length, 16);
    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        text("UniqueIdentifier", uid),
        parameters,
        child(encrypted, "Data")!,
        iv,
        tag,
      ]),
    );
    assert.equal(Buffer.from(child(decrypted, "Data")!.value as Uint8Array).toString(), "hello");

    const tampered = Buffer.from(tag.value as Uint8Array);
    tampered[0]! ^= 1;
    const failed = await call(dispatcher, "Decrypt", [
      text("UniqueIdentifier", uid),
      parameters,
      child(encrypted, "Data")!,
      iv,
      bytes("AuthenticatedEncryptionTag", tampered),
    ]);
    assert.equal(resultReason(failed), "CryptographicFailure");
  });

  it("fail encrypt without the usage bit", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, DECRYPT);
    const item = await call(dispatcher, "Encrypt", [
      text("UniqueIdentifier", uid),
      bytes("Data", Buffer.alloc(16)),
    ]);
    assert.equal(resultReason(item), "IncompatibleCryptographicUsageMask");
  });

  it("mac and mac verify with HMAC-SHA256", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, MAC_GENERATE | MAC_VERIFY, "HMAC_SHA256");
    const data = bytes("Data", Buffer.from("message"));
    const macPayload = payloadOf(
      await call(dispatcher, "MAC", [text("UniqueIdentifier", uid), data]),
    );
    const macData = Buffer.from(child(macPayload, "MACData")!.value as Uint8Array);
    assert.deepEqual(macData, createHmac("sha256", AES_KEY).update("message").digest());
    const verify = payloadOf(
      await call(dispatcher, "MACVerify", [
        text("UniqueIdentifier", uid),
        data,
        bytes("MACData", macData),
      ]),
    );
    assert.equal(enumName(child(verify, "ValidityIndicator")!), "Valid");
  });

  it("rng retrieve returns the requested length", async () => {
    const dispatcher = newDispatcher();
    const payload = payloadOf(await call(dispatcher, "RNGRetrieve", [integer("DataLength", 48)]));
    assert.equal((child(payload, "Data")!.value as Uint8Array).length, 48);
  });

  for (const [name, algorithm, length] of [
    ["RSA", "RSA", 2048],
    ["ECDSA", "EC", 256],
  ] as const) {
    it(`key pair signs and verifies ${name}`, async () => {
      const dispatcher = newDispatcher();
      const now = BigInt(Math.floor(Date.now() / 1000) - 60);
      const pair = payloadOf(
        await call(dispatcher, "CreateKeyPair", [
          struct("CommonAttributes", [
            enumItem("CryptographicAlgorithm", algorithm),
            integer("CryptographicLength", length),
            dateTime("ActivationDate", now),
          ]),
          struct("PrivateKeyAttributes", [usage(SIGN)]),
          struct("PublicKeyAttributes", [usage(VERIFY)]),
        ]),
      );
      const privateUid = textOf(child(pair, "PrivateKeyUniqueIdentifier")!);
      const publicUid = textOf(child(pair, "PublicKeyUniqueIdentifier")!);
      const parameters = struct("CryptographicParameters", [
        enumItem("HashingAlgorithm", "SHA_256"),
      ]);
      const data = bytes("Data", Buffer.from("sign me"));
      const signed = payloadOf(
        await call(dispatcher, "Sign", [text("UniqueIdentifier", privateUid), parameters, data]),
      );
      const signature = child(signed, "SignatureData")!;
      const verified = payloadOf(
        await call(dispatcher, "SignatureVerify", [
          text("UniqueIdentifier", publicUid),
          parameters,
          data,
          signature,
        ]),
      );
      assert.equal(enumName(child(verified, "ValidityIndicator")!), "Valid");
      const wrong = payloadOf(
        await call(dispatcher, "SignatureVerify", [
          text("UniqueIdentifier", publicUid),
          parameters,
          bytes("Data", Buffer.from("other")),
          signature,
        ]),
      );
      assert.equal(enumName(child(wrong, "ValidityIndicator")!), "Invalid");
    });
  }

  it("re-key links the new key", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const payload = payloadOf(await call(dispatcher, "ReKey", [text("UniqueIdentifier", uid)]));
    const newUid = uidOf(payload);
    assert.notEqual(newUid, uid);
    const attributes = child(
      payloadOf(await call(dispatcher, "GetAttributes", [text("UniqueIdentifier", uid)])),
      "Attributes",
    ) as StructureItem;
    const links = children(attributes, "Link").map((link) =>
      textOf(child(link as StructureItem, "LinkedObjectIdentifier")!),
    );
    assert.deepEqual(links, [newUid]);
  });

  it("check reports a usage mask mismatch", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, AES_KEY, ENCRYPT);
    const ok = await call(dispatcher, "Check", [text("UniqueIdentifier", uid), usage(ENCRYPT)]);
    assert.equal(resultStatus(ok), "Success");
    const bad = await call(dispatcher, "Check", [text("UniqueIdentifier", uid), usage(DECRYPT)]);
    assert.equal(resultReason(bad), "IncompatibleCryptographicUsageMask");
  });
});
