import assert from "node:assert/strict";
import {
  constants,
  createPublicKey,
  type KeyObject,
  publicEncrypt,
  verify as verifySignature,
} from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { HsmToken } from "../../../src/hsm/token.ts";
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
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { requireSoftHsm, SOFTHSM_LIBRARY, softHsmInstalled } from "../../hsm/softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "../../hsm/softhsm-token.ts";
import {
  activeSince,
  call,
  newDispatcher,
  payloadOf,
  resultReason,
  resultStatus,
  uidOf,
} from "./helpers.ts";

const TOKEN = "keyward-kmip";
const PIN = "kmip-pin-2718";

const SIGN = 1;
const VERIFY = 2;
const ENCRYPT = 4;
const DECRYPT = 8;

function id(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

function parameters(...items: KmipItem[]): KmipItem {
  return struct("CryptographicParameters", items);
}

function bytesOfChild(payload: StructureItem, name: string): Buffer {
  return Buffer.from(child(payload, name)!.value as Uint8Array);
}

/** Reads a single-valued attribute's value from a 2.x Get Attributes response. */
function attributeValue(payload: StructureItem, tagName: string): unknown {
  const attributes = child(payload, "Attributes") as StructureItem;
  return child(attributes, tagName)?.value;
}

describe("KMIP keys held in an HSM", () => {
  let softHsm: SoftHsmToken | undefined;
  /** The open session: the one `openSoftHsmToken` opened, or the one a test reopened. */
  let token: HsmToken | undefined;
  let barrier: MemoryBarrier;
  let dispatcher: KmipDispatcher;

  before(async () => {
    if (!softHsmInstalled()) return;
    softHsm = await openSoftHsmToken([TOKEN], PIN);
    token = softHsm.token;
    barrier = new MemoryBarrier();
    dispatcher = new KmipDispatcher({ store: new KmipObjectStore(barrier), hsm: token });
  });

  after(async () => {
    // Closing a token twice is harmless, so this also covers a test that reopened it.
    await token?.close();
    await softHsm?.close();
  });

  function ready(t: TestContext): boolean {
    return requireSoftHsm(t) && token !== undefined;
  }

  /** Lists the token's objects labelled `keyward/kmip/<uid>` with pkcs11-tool. */
  function tokenObjects(t: TestContext, uid: string): string[] | undefined {
    if (!requirePeer(t, "pkcs11-tool")) return undefined;
    const listed = softHsm!.hsm.listObjects(TOKEN, PIN);
    assert.equal(listed.status, 0, listed.output);
    return listed.output
      .split(/\n(?=\S[^\n]*Object;)/)
      .filter((block) =>
        block.split("\n").some((line) => line.trim() === `label:      keyward/kmip/${uid}`),
      );
  }

  async function createAes(extra: KmipItem[] = [], bits = 256): Promise<string> {
    return uidOf(
      payloadOf(
        await call(dispatcher, "Create", [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", bits),
            integer("CryptographicUsageMask", ENCRYPT | DECRYPT),
            boolean("Extractable", false),
            activeSince(),
            ...extra,
          ]),
        ]),
      ),
    );
  }

  async function createPair(
    algorithm: string,
    length: number,
  ): Promise<{ privateUid: string; publicUid: string }> {
    const pair = payloadOf(
      await call(dispatcher, "CreateKeyPair", [
        struct("CommonAttributes", [
          enumItem("CryptographicAlgorithm", algorithm),
          integer("CryptographicLength", length),
          boolean("Extractable", false),
          activeSince(),
        ]),
        struct("PrivateKeyAttributes", [
          integer("CryptographicUsageMask", SIGN | VERIFY | DECRYPT),
        ]),
        struct("PublicKeyAttributes", [integer("CryptographicUsageMask", VERIFY | ENCRYPT)]),
      ]),
    );
    return {
      privateUid: textOf(child(pair, "PrivateKeyUniqueIdentifier")!),
      publicUid: textOf(child(pair, "PublicKeyUniqueIdentifier")!),
    };
  }

  async function publicKeyOf(uid: string): Promise<KeyObject> {
    const got = payloadOf(
      await call(dispatcher, "Get", [id(uid), enumItem("KeyFormatType", "X_509")]),
    );
    const block = child(child(got, "PublicKey") as StructureItem, "KeyBlock") as StructureItem;
    const material = child(child(block, "KeyValue") as StructureItem, "KeyMaterial")!;
    return createPublicKey({
      key: Buffer.from(material.value as Uint8Array),
      format: "der",
      type: "spki",
    });
  }

  it("AES key stays in the token", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    assert.ok(barrier.values.has(`kmip/objects/${uid}`));

    for (const version of [
      [2, 1],
      [1, 4],
    ] as const) {
      const got = await call(dispatcher, "Get", [id(uid)], [...version]);
      assert.equal(resultStatus(got), "OperationFailed");
      assert.equal(resultReason(got), "NotExtractable", `KMIP ${version.join(".")}`);
    }
    const attributes = payloadOf(await call(dispatcher, "GetAttributes", [id(uid)]));
    assert.equal(attributeValue(attributes, "Extractable"), false);
    assert.equal(attributeValue(attributes, "Sensitive"), true);
    assert.equal(attributeValue(attributes, "NeverExtractable"), true);
    assert.equal(attributeValue(attributes, "CryptographicLength"), 256);

    const blocks = tokenObjects(t, uid);
    if (blocks === undefined) return;
    assert.equal(blocks.length, 1, blocks.join("\n"));
    assert.match(blocks[0] ?? "", /^Secret Key Object; AES length 32/);
    assert.match(blocks[0] ?? "", /Access:.*never extractable/);
  });

  it("AES-GCM encrypts and decrypts", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes([], 128);
    const gcm = parameters(enumItem("BlockCipherMode", "GCM"), integer("TagLength", 16));
    const plaintext = Buffer.from("volume 12 master key");
    const aad = Buffer.from("volume 12");
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [
        id(uid),
        gcm,
        bytes("Data", plaintext),
        bytes("AuthenticatedEncryptionAdditionalData", aad),
      ]),
    );
    const iv = bytesOfChild(encrypted, "IVCounterNonce");
    const tag = bytesOfChild(encrypted, "AuthenticatedEncryptionTag");
    const ciphertext = bytesOfChild(encrypted, "Data");
    assert.equal(iv.length, 12);
    assert.equal(tag.length, 16);
    assert.equal(ciphertext.length, plaintext.length);

    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        id(uid),
        gcm,
        bytes("Data", ciphertext),
        bytes("IVCounterNonce", iv),
        bytes("AuthenticatedEncryptionAdditionalData", aad),
        bytes("AuthenticatedEncryptionTag", tag),
      ]),
    );
    assert.deepEqual(bytesOfChild(decrypted, "Data"), plaintext);

    const forgedTag = Buffer.from(tag);
    forgedTag[0] = (forgedTag[0] ?? 0) ^ 1;
    const forged = await call(dispatcher, "Decrypt", [
      id(uid),
      gcm,
      bytes("Data", ciphertext),
      bytes("IVCounterNonce", iv),
      bytes("AuthenticatedEncryptionAdditionalData", aad),
      bytes("AuthenticatedEncryptionTag", forgedTag),
    ]);
    assert.equal(resultReason(forged), "CryptographicFailure");

    const shortTag = payloadOf(
      await call(dispatcher, "Encrypt", [
        id(uid),
        parameters(enumItem("BlockCipherMode", "GCM"), integer("TagLength", 12)),
        bytes("Data", plaintext),
        bytes("IVCounterNonce", Buffer.alloc(12, 7)),
      ]),
    );
    assert.equal(bytesOfChild(shortTag, "AuthenticatedEncryptionTag").length, 12);
    assert.equal(child(shortTag, "IVCounterNonce"), undefined, "a client IV is not returned");
  });

  it("AES-CBC with PKCS5 padding", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const cbc = parameters(enumItem("BlockCipherMode", "CBC"), enumItem("PaddingMethod", "PKCS5"));
    const plaintext = Buffer.from("twenty-one bytes long");
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [id(uid), cbc, bytes("Data", plaintext)]),
    );
    const iv = bytesOfChild(encrypted, "IVCounterNonce");
    const ciphertext = bytesOfChild(encrypted, "Data");
    assert.equal(iv.length, 16);
    assert.equal(ciphertext.length, 32);
    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        id(uid),
        cbc,
        bytes("Data", ciphertext),
        bytes("IVCounterNonce", iv),
      ]),
    );
    assert.deepEqual(bytesOfChild(decrypted, "Data"), plaintext);

    const unpadded = parameters(enumItem("BlockCipherMode", "CBC"));
    const ragged = await call(dispatcher, "Encrypt", [id(uid), unpadded, bytes("Data", plaintext)]);
    assert.equal(resultReason(ragged), "InvalidField");
    const blocks = payloadOf(
      await call(dispatcher, "Encrypt", [id(uid), unpadded, bytes("Data", Buffer.alloc(32, 3))]),
    );
    assert.equal(bytesOfChild(blocks, "Data").length, 32);
  });

  it("rejects modes the HSM path lacks", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const cases: Array<[string, KmipItem[], string]> = [
      ["default ECB", [], "InvalidField"],
      ["CTR", [parameters(enumItem("BlockCipherMode", "CTR"))], "InvalidField"],
      [
        "GCM with padding",
        [parameters(enumItem("BlockCipherMode", "GCM"), enumItem("PaddingMethod", "PKCS5"))],
        "InvalidField",
      ],
      [
        "GCM tag of 8 bytes",
        [parameters(enumItem("BlockCipherMode", "GCM"), integer("TagLength", 8))],
        "InvalidField",
      ],
      [
        "CBC with a short IV",
        [parameters(enumItem("BlockCipherMode", "CBC")), bytes("IVCounterNonce", Buffer.alloc(8))],
        "InvalidField",
      ],
    ];
    for (const [name, extra, reason] of cases) {
      const item = await call(dispatcher, "Encrypt", [
        id(uid),
        ...extra,
        bytes("Data", Buffer.alloc(16)),
      ]);
      assert.equal(resultStatus(item), "OperationFailed", name);
      assert.equal(resultReason(item), reason, name);
    }
    const noIv = await call(dispatcher, "Decrypt", [
      id(uid),
      parameters(enumItem("BlockCipherMode", "CBC")),
      bytes("Data", Buffer.alloc(16)),
    ]);
    assert.equal(resultReason(noIv), "InvalidMessage");
    const sign = await call(dispatcher, "Sign", [id(uid), bytes("Data", Buffer.from("x"))]);
    assert.equal(resultStatus(sign), "OperationFailed");
  });

  it("rejects empty data and keeps working", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const gcm = [parameters(enumItem("BlockCipherMode", "GCM"))];
    const cbc = [
      parameters(enumItem("BlockCipherMode", "CBC"), enumItem("PaddingMethod", "PKCS5")),
      bytes("IVCounterNonce", Buffer.alloc(16)),
    ];
    const cases: Array<[string, string, KmipItem[]]> = [
      ["Encrypt", "GCM", gcm],
      ["Encrypt", "CBC", cbc],
      ["Decrypt", "CBC", cbc],
    ];
    for (const [operation, mode, extra] of cases) {
      const item = await call(dispatcher, operation, [
        id(uid),
        ...extra,
        bytes("Data", Buffer.alloc(0)),
      ]);
      assert.equal(resultReason(item), "InvalidField", `${operation} ${mode}`);
    }
    // The token session is still usable afterwards.
    const encrypted = await call(dispatcher, "Encrypt", [
      id(uid),
      parameters(enumItem("BlockCipherMode", "GCM")),
      bytes("Data", Buffer.from("after empty input")),
    ]);
    assert.equal(resultStatus(encrypted), "Success");
  });

  it("RSA key pair signs, verifies and decrypts", async (t) => {
    if (!ready(t)) return;
    const { privateUid, publicUid } = await createPair("RSA", 2048);
    const publicKey = await publicKeyOf(publicUid);
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const privateGet = await call(dispatcher, "Get", [id(privateUid)]);
    assert.equal(resultReason(privateGet), "NotExtractable");

    const message = Buffer.from("backup catalogue 42");
    for (const [name, choice, verifyOptions] of [
      [
        "PKCS#1 v1.5",
        parameters(enumItem("HashingAlgorithm", "SHA_256")),
        { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      ],
      [
        "PSS",
        parameters(enumItem("HashingAlgorithm", "SHA_256"), enumItem("PaddingMethod", "PSS")),
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
      ],
    ] as const) {
      const signed = payloadOf(
        await call(dispatcher, "Sign", [id(privateUid), choice, bytes("Data", message)]),
      );
      const signature = bytesOfChild(signed, "SignatureData");
      assert.equal(verifySignature("sha256", message, verifyOptions, signature), true, name);
      for (const uid of [publicUid, privateUid]) {
        const verified = payloadOf(
          await call(dispatcher, "SignatureVerify", [
            id(uid),
            choice,
            bytes("Data", message),
            bytes("SignatureData", signature),
          ]),
        );
        assert.equal(enumName(child(verified, "ValidityIndicator")!), "Valid", `${name} ${uid}`);
      }
    }

    const secret = Buffer.from("data encryption key 256 bits....");
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [
        id(publicUid),
        parameters(enumItem("PaddingMethod", "OAEP"), enumItem("HashingAlgorithm", "SHA_1")),
        bytes("Data", secret),
      ]),
    );
    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        id(privateUid),
        parameters(enumItem("PaddingMethod", "OAEP"), enumItem("HashingAlgorithm", "SHA_1")),
        bytes("Data", bytesOfChild(encrypted, "Data")),
      ]),
    );
    assert.deepEqual(bytesOfChild(decrypted, "Data"), secret);

    const local = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      Buffer.from("from the client"),
    );
    const fromClient = payloadOf(
      await call(dispatcher, "Decrypt", [id(privateUid), bytes("Data", local)]),
    );
    assert.equal(bytesOfChild(fromClient, "Data").toString(), "from the client");

    const pkcs1 = await call(dispatcher, "Decrypt", [
      id(privateUid),
      parameters(enumItem("PaddingMethod", "PKCS1V1_5")),
      bytes("Data", local),
    ]);
    assert.equal(resultReason(pkcs1), "CryptographicFailure");
    const mixed = await call(dispatcher, "Decrypt", [
      id(privateUid),
      parameters(
        enumItem("HashingAlgorithm", "SHA_256"),
        enumItem("MaskGeneratorHashingAlgorithm", "SHA_1"),
      ),
      bytes("Data", local),
    ]);
    assert.equal(resultReason(mixed), "InvalidField");
    // SoftHSM 2.6.1 implements OAEP with SHA-1 only; another hash fails in the token.
    const sha256 = await call(dispatcher, "Decrypt", [
      id(privateUid),
      parameters(enumItem("HashingAlgorithm", "SHA_256")),
      bytes("Data", local),
    ]);
    assert.equal(resultStatus(sha256), "OperationFailed");
    const pssSha3 = await call(dispatcher, "Sign", [
      id(privateUid),
      parameters(enumItem("HashingAlgorithm", "SHA3_256"), enumItem("PaddingMethod", "PSS")),
      bytes("Data", message),
    ]);
    assert.equal(resultReason(pssSha3), "InvalidField");
    const pssLongSalt = await call(dispatcher, "Sign", [
      id(privateUid),
      parameters(
        enumItem("HashingAlgorithm", "SHA_256"),
        enumItem("PaddingMethod", "PSS"),
        integer("SaltLength", 10_000),
      ),
      bytes("Data", message),
    ]);
    assert.equal(resultReason(pssLongSalt), "InvalidField");

    const blocks = tokenObjects(t, privateUid);
    if (blocks === undefined) return;
    assert.equal(blocks.length, 2, "the private key and its public key");
    const privateBlock = blocks.find((block) => block.startsWith("Private Key Object; RSA"));
    assert.ok(privateBlock, blocks.join("\n"));
    assert.match(privateBlock, /Access:.*never extractable/);
  });

  it("EC P-256 key pair signs", async (t) => {
    if (!ready(t)) return;
    const { privateUid, publicUid } = await createPair("EC", 256);
    const publicKey = await publicKeyOf(publicUid);
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    const message = Buffer.from("audit log segment 9");
    const choice = parameters(enumItem("HashingAlgorithm", "SHA_384"));
    const signed = payloadOf(
      await call(dispatcher, "Sign", [id(privateUid), choice, bytes("Data", message)]),
    );
    const signature = bytesOfChild(signed, "SignatureData");
    assert.equal(verifySignature("sha384", message, publicKey, signature), true);
    const verified = payloadOf(
      await call(dispatcher, "SignatureVerify", [
        id(publicUid),
        choice,
        bytes("Data", message),
        bytes("SignatureData", signature),
      ]),
    );
    assert.equal(enumName(child(verified, "ValidityIndicator")!), "Valid");
    const got = await call(dispatcher, "Get", [id(privateUid)]);
    assert.equal(resultReason(got), "NotExtractable");
  });

  it("re-keys an EC pair in the token", async (t) => {
    if (!ready(t)) return;
    const { privateUid, publicUid } = await createPair("EC", 256);
    const rekeyed = payloadOf(
      await call(dispatcher, "ReKeyKeyPair", [text("PrivateKeyUniqueIdentifier", privateUid)]),
    );
    const newPrivate = textOf(child(rekeyed, "PrivateKeyUniqueIdentifier")!);
    const newPublic = textOf(child(rekeyed, "PublicKeyUniqueIdentifier")!);
    const stored = JSON.parse(
      Buffer.from(barrier.values.get(`kmip/objects/${newPrivate}`)!).toString(),
    );
    assert.equal(stored.hsmObject.label, `keyward/kmip/${newPrivate}`);
    assert.equal(resultReason(await call(dispatcher, "Get", [id(newPrivate)])), "NotExtractable");

    // The new pair takes the old one's Activation Date, so it is Active at once.
    const message = Buffer.from("rotated signing key");
    const signed = payloadOf(
      await call(dispatcher, "Sign", [
        id(newPrivate),
        parameters(enumItem("HashingAlgorithm", "SHA_256")),
        bytes("Data", message),
      ]),
    );
    const signature = bytesOfChild(signed, "SignatureData");
    const fresh = await publicKeyOf(newPublic);
    assert.equal(verifySignature("sha256", message, fresh, signature), true);
    const old = await publicKeyOf(publicUid);
    assert.equal(verifySignature("sha256", message, old, signature), false);

    const blocks = tokenObjects(t, newPrivate);
    if (blocks === undefined) return;
    assert.equal(blocks.length, 2, blocks.join("\n"));
  });

  it("rejects an extractable HSM pair replacement", async (t) => {
    if (!ready(t)) return;
    const { privateUid } = await createPair("EC", 256);
    const result = await call(dispatcher, "ReKeyKeyPair", [
      text("PrivateKeyUniqueIdentifier", privateUid),
      struct("PrivateKeyAttributes", [boolean("Extractable", true)]),
    ]);
    assert.equal(resultReason(result), "InvalidField");
  });

  it("rejects keys the HSM cannot make", async (t) => {
    if (!ready(t)) return;
    const des = await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "DES3"),
        integer("CryptographicLength", 168),
        boolean("Extractable", false),
      ]),
    ]);
    assert.equal(resultReason(des), "FeatureNotSupported");
    const notSensitive = await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        boolean("Extractable", false),
        boolean("Sensitive", false),
      ]),
    ]);
    assert.equal(resultReason(notSensitive), "InvalidField");
    for (const [algorithm, length] of [
      ["RSA", 8192],
      ["RSA", 1024],
      ["EC", 384],
    ] as const) {
      const pair = await call(dispatcher, "CreateKeyPair", [
        struct("CommonAttributes", [
          enumItem("CryptographicAlgorithm", algorithm),
          integer("CryptographicLength", length),
          boolean("Extractable", false),
        ]),
      ]);
      assert.equal(resultReason(pair), "InvalidField", `${algorithm} ${length}`);
    }
  });

  it("destroy removes the token objects", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const { privateUid } = await createPair("RSA", 2048);
    for (const target of [uid, privateUid]) {
      payloadOf(
        await call(dispatcher, "Revoke", [
          id(target),
          struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
        ]),
      );
      payloadOf(await call(dispatcher, "Destroy", [id(target)]));
      const attributes = payloadOf(await call(dispatcher, "GetAttributes", [id(target)]));
      const state = child(child(attributes, "Attributes") as StructureItem, "State");
      assert.equal(state === undefined ? undefined : enumName(state), "Destroyed");
      const blocks = tokenObjects(t, target);
      if (blocks !== undefined) assert.deepEqual(blocks, [], `objects of ${target}`);
    }
    const stored = JSON.parse(Buffer.from(barrier.values.get(`kmip/objects/${uid}`)!).toString());
    assert.equal(stored.hsmObject, undefined);
    assert.equal(stored.content, undefined);
  });

  it("re-keys an AES key in the token", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes([], 128);
    const replacement = uidOf(payloadOf(await call(dispatcher, "ReKey", [id(uid)])));
    assert.notEqual(replacement, uid);

    const got = await call(dispatcher, "Get", [id(replacement)]);
    assert.equal(resultReason(got), "NotExtractable");
    const attributes = payloadOf(await call(dispatcher, "GetAttributes", [id(replacement)]));
    assert.equal(attributeValue(attributes, "Extractable"), false);
    assert.equal(attributeValue(attributes, "Sensitive"), true);
    assert.equal(attributeValue(attributes, "CryptographicLength"), 128);
    const links = children(child(attributes, "Attributes") as StructureItem, "Link").map((link) =>
      textOf(child(link as StructureItem, "LinkedObjectIdentifier")!),
    );
    assert.deepEqual(links, [uid]);

    // The replacement is a different token key: the old key cannot decrypt its output.
    const gcm = parameters(enumItem("BlockCipherMode", "GCM"), integer("TagLength", 16));
    // The replacement takes the old key's Activation Date, so it is Active at once.
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [id(replacement), gcm, bytes("Data", Buffer.from("x"))]),
    );
    const crossed = await call(dispatcher, "Decrypt", [
      id(uid),
      gcm,
      bytes("Data", bytesOfChild(encrypted, "Data")),
      bytes("IVCounterNonce", bytesOfChild(encrypted, "IVCounterNonce")),
      bytes("AuthenticatedEncryptionTag", bytesOfChild(encrypted, "AuthenticatedEncryptionTag")),
    ]);
    assert.equal(resultReason(crossed), "CryptographicFailure");

    const blocks = tokenObjects(t, replacement);
    if (blocks === undefined) return;
    assert.equal(blocks.length, 1, blocks.join("\n"));
    assert.match(blocks[0] ?? "", /^Secret Key Object; AES length 16/);
  });

  it("rejects an extractable HSM replacement", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const extractable = await call(dispatcher, "ReKey", [
      id(uid),
      struct("Attributes", [boolean("Extractable", true)]),
    ]);
    assert.equal(resultReason(extractable), "InvalidField");
  });

  it("keys work after a restart", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const { privateUid } = await createPair("EC", 256);
    const gcm = parameters(enumItem("BlockCipherMode", "GCM"));
    const encrypted = payloadOf(
      await call(dispatcher, "Encrypt", [id(uid), gcm, bytes("Data", Buffer.from("kept"))]),
    );

    // A new session, token handle and object store over the same storage, as after a restart.
    await token!.close();
    token = await HsmToken.open({ library: SOFTHSM_LIBRARY, tokenLabel: TOKEN, pin: PIN });
    dispatcher = new KmipDispatcher({ store: new KmipObjectStore(barrier), hsm: token });

    const decrypted = payloadOf(
      await call(dispatcher, "Decrypt", [
        id(uid),
        gcm,
        bytes("Data", bytesOfChild(encrypted, "Data")),
        bytes("IVCounterNonce", bytesOfChild(encrypted, "IVCounterNonce")),
        bytes("AuthenticatedEncryptionTag", bytesOfChild(encrypted, "AuthenticatedEncryptionTag")),
      ]),
    );
    assert.equal(bytesOfChild(decrypted, "Data").toString(), "kept");
    const signed = await call(dispatcher, "Sign", [
      id(privateUid),
      bytes("Data", Buffer.from("x")),
    ]);
    assert.equal(resultStatus(signed), "Success");
  });

  it("server without an HSM holds the key itself", async () => {
    const plain = new MemoryBarrier();
    const software = newDispatcher(plain);
    const payload = payloadOf(
      await call(software, "Create", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [
          enumItem("CryptographicAlgorithm", "AES"),
          integer("CryptographicLength", 256),
          integer("CryptographicUsageMask", ENCRYPT | DECRYPT),
          boolean("Extractable", false),
          activeSince(),
        ]),
      ]),
    );
    const uid = uidOf(payload);
    const stored = JSON.parse(Buffer.from(plain.values.get(`kmip/objects/${uid}`)!).toString());
    assert.equal(stored.hsmObject, undefined);
    assert.ok(stored.content, "Keyward stores the key material");
    assert.equal(resultReason(await call(software, "Get", [id(uid)])), "NotExtractable");
    // ECB is the default mode for keys Keyward holds.
    const encrypted = payloadOf(
      await call(software, "Encrypt", [id(uid), bytes("Data", Buffer.alloc(16))]),
    );
    assert.equal(bytesOfChild(encrypted, "Data").length, 16);
  });

  it("HSM-held key without the HSM fails cleanly", async (t) => {
    if (!ready(t)) return;
    const uid = await createAes();
    const withoutHsm = new KmipDispatcher({ store: new KmipObjectStore(barrier) });
    const item = await call(withoutHsm, "Encrypt", [
      id(uid),
      parameters(enumItem("BlockCipherMode", "GCM")),
      bytes("Data", Buffer.from("x")),
    ]);
    assert.equal(resultReason(item), "GeneralFailure");
    assert.match(textOf(child(item, "ResultMessage")!), /hsm_pkcs11_/);
    assert.equal(children(item, "ResponsePayload").length, 0);
  });
});
