import assert from "node:assert/strict";
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  webcrypto,
} from "node:crypto";
import { describe, it } from "node:test";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import {
  boolean,
  bytes,
  bytesOf,
  child,
  children,
  enumItem,
  enumName,
  integer,
  struct,
  text,
} from "../../../src/kmip/server/items.ts";
import { CryptoStreamTable } from "../../../src/kmip/server/streams.ts";
import { tagDisplayName } from "../../../src/kmip/tags.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import {
  activeSince,
  call,
  newDispatcher,
  payloadOf,
  requestMessage,
  resultReason,
  resultStatus,
  uidOf,
} from "./helpers.ts";

type Dispatcher = ReturnType<typeof newDispatcher>;

const ENCRYPT = 0x4;
const DECRYPT = 0x8;
const WRAP_KEY = 0x10;

async function registerAes(
  dispatcher: Dispatcher,
  key: Buffer,
  mask: number,
  extra: readonly KmipItem[] = [],
  algorithm = "AES",
): Promise<string> {
  const payload = payloadOf(
    await call(dispatcher, "Register", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [integer("CryptographicUsageMask", mask), activeSince(), ...extra]),
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

/** Returns the 2.x attributes of a Get Attributes response, by tag name. */
async function attributesOf(dispatcher: Dispatcher, uid: string): Promise<Map<string, KmipItem[]>> {
  const payload = payloadOf(
    await call(dispatcher, "GetAttributes", [text("UniqueIdentifier", uid)]),
  );
  const byName = new Map<string, KmipItem[]>();
  for (const item of (child(payload, "Attributes") as StructureItem).value) {
    const name = tagDisplayName(item.tag);
    byName.set(name, [...(byName.get(name) ?? []), item]);
  }
  return byName;
}

async function attributeListOf(
  dispatcher: Dispatcher,
  uid: string,
  version: [number, number],
): Promise<string[]> {
  const payload = payloadOf(
    await call(dispatcher, "GetAttributeList", [text("UniqueIdentifier", uid)], version),
  );
  return payload.value
    .filter((item) => item.tag !== child(payload, "UniqueIdentifier")!.tag)
    .map((item) => (item.type === "TextString" ? item.value : enumName(item)));
}

describe("KMIP server defaults", () => {
  it("new keys get Fresh, Lease Time and protection attributes", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT);
    const attributes = await attributesOf(dispatcher, uid);
    assert.equal(attributes.get("Fresh")?.[0]?.value, true);
    assert.equal(attributes.get("LeaseTime")?.[0]?.value, 3600);
    assert.equal(attributes.get("LeaseTime")?.[0]?.type, "Interval");
    assert.equal(attributes.get("Sensitive")?.[0]?.value, false);
    assert.equal(attributes.get("Extractable")?.[0]?.value, true);
    assert.equal(attributes.get("AlwaysSensitive")?.[0]?.value, false);
    assert.equal(attributes.get("NeverExtractable")?.[0]?.value, false);
    assert.equal(attributes.get("ProtectionStorageMask")?.[0]?.value, 1);
    const short = attributes.get("ShortUniqueIdentifier")?.[0];
    assert.ok(short !== undefined);
    assert.deepEqual(Buffer.from(bytesOf(short)), createHash("sha256").update(uid).digest());
  });

  it("Get turns Fresh false", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT);
    payloadOf(await call(dispatcher, "Get", [text("UniqueIdentifier", uid)]));
    const attributes = await attributesOf(dispatcher, uid);
    assert.equal(attributes.get("Fresh")?.[0]?.value, false);
  });

  it("client values override the defaults", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT, [
      boolean("Sensitive", true),
      boolean("Fresh", false),
    ]);
    const attributes = await attributesOf(dispatcher, uid);
    assert.equal(attributes.get("Sensitive")?.[0]?.value, true);
    assert.equal(attributes.get("AlwaysSensitive")?.[0]?.value, true);
    assert.equal(attributes.get("Fresh")?.[0]?.value, false);
    assert.equal(attributes.get("Sensitive")?.length, 1);
  });

  it("attribute list follows the protocol version", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT);
    const v21 = await attributeListOf(dispatcher, uid, [2, 1]);
    assert.ok(v21.includes("ShortUniqueIdentifier"));
    assert.ok(v21.includes("ProtectionStorageMask"));
    const v14 = await attributeListOf(dispatcher, uid, [1, 4]);
    assert.ok(v14.includes("Lease Time"));
    assert.ok(v14.includes("Sensitive"));
    assert.ok(!v14.includes("Short Unique Identifier"));
    assert.ok(!v14.includes("Protection Storage Mask"));
    const v10 = await attributeListOf(dispatcher, uid, [1, 0]);
    assert.ok(v10.includes("Lease Time"));
    assert.ok(!v10.includes("Fresh"));
    assert.ok(!v10.includes("Sensitive"));
  });

  it("Lease Time is read-only for clients", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT);
    const item = await call(dispatcher, "SetAttribute", [
      text("UniqueIdentifier", uid),
      struct("NewAttribute", [{ ...integer("LeaseTime", 10), type: "Interval" } as KmipItem]),
    ]);
    assert.equal(resultReason(item), "AttributeReadOnly");
  });
});

async function selfSignedCertificate(): Promise<Buffer> {
  const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: "C=DE, O=Keyward Test, CN=kmip-device",
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "device.test" }])],
  });
  return Buffer.from(certificate.rawData);
}

async function registerCertificate(dispatcher: Dispatcher, der: Buffer): Promise<StructureItem> {
  return call(dispatcher, "Register", [
    enumItem("ObjectType", "Certificate"),
    struct("Attributes", []),
    struct("Certificate", [enumItem("CertificateType", "X_509"), bytes("CertificateValue", der)]),
  ]);
}

describe("KMIP certificate attributes", () => {
  it("Register derives attributes from the certificate", async () => {
    const dispatcher = newDispatcher();
    const der = await selfSignedCertificate();
    const uid = uidOf(payloadOf(await registerCertificate(dispatcher, der)));
    const attributes = await attributesOf(dispatcher, uid);
    assert.equal(attributes.get("CertificateSubjectCN")?.[0]?.value, "kmip-device");
    assert.equal(attributes.get("CertificateSubjectO")?.[0]?.value, "Keyward Test");
    assert.equal(attributes.get("CertificateSubjectC")?.[0]?.value, "DE");
    assert.equal(attributes.get("CertificateIssuerCN")?.[0]?.value, "kmip-device");
    assert.equal(attributes.get("CertificateLength")?.[0]?.value, der.length);
    assert.equal(enumName(attributes.get("CertificateType")![0]!), "X_509");
    assert.equal(enumName(attributes.get("DigitalSignatureAlgorithm")![0]!), "ECDSAWithSHA256");
    const subject = attributes.get("X_509CertificateSubject")?.[0] as StructureItem;
    assert.ok(subject !== undefined);
    assert.ok(child(subject, "SubjectDistinguishedName") !== undefined);
    assert.ok(child(subject, "SubjectAlternativeName") !== undefined);
    const identifier = attributes.get("X_509CertificateIdentifier")?.[0] as StructureItem;
    assert.ok(child(identifier, "CertificateSerialNumber") !== undefined);
  });

  it("1.x clients get no name components", async () => {
    const dispatcher = newDispatcher();
    const uid = uidOf(
      payloadOf(await registerCertificate(dispatcher, await selfSignedCertificate())),
    );
    const v14 = await attributeListOf(dispatcher, uid, [1, 4]);
    assert.ok(!v14.includes("Certificate Subject CN"));
    assert.ok(v14.includes("X.509 Certificate Subject"));
    assert.ok(v14.includes("Certificate Length"));
  });

  it("derived attributes are read-only", async () => {
    const dispatcher = newDispatcher();
    const uid = uidOf(
      payloadOf(await registerCertificate(dispatcher, await selfSignedCertificate())),
    );
    const item = await call(dispatcher, "ModifyAttribute", [
      text("UniqueIdentifier", uid),
      struct("NewAttribute", [text("CertificateSubjectCN", "other")]),
    ]);
    assert.equal(resultReason(item), "AttributeReadOnly");
  });

  it("Register rejects a value that is not DER X.509", async () => {
    const dispatcher = newDispatcher();
    const item = await registerCertificate(dispatcher, Buffer.from("not a certificate"));
    assert.equal(resultStatus(item), "OperationFailed");
    assert.equal(resultReason(item), "InvalidField");
  });
});

function wrappingSpecification(
  uid: string,
  extra: readonly KmipItem[] = [],
  mode = "NISTKeyWrap",
): KmipItem {
  return struct("KeyWrappingSpecification", [
    enumItem("WrappingMethod", "Encrypt"),
    struct("EncryptionKeyInformation", [
      text("UniqueIdentifier", uid),
      struct("CryptographicParameters", [enumItem("BlockCipherMode", mode)]),
    ]),
    ...extra,
  ]);
}

/** Returns the Key Block of a Get response payload. */
function keyBlockOf(payload: StructureItem): StructureItem {
  const content = child(payload, "SymmetricKey") as StructureItem;
  return child(content, "KeyBlock") as StructureItem;
}

describe("KMIP key wrapping", () => {
  it("Get wraps the Key Value with AES Key Wrap", async () => {
    const dispatcher = newDispatcher();
    const kek = randomBytes(32);
    const key = randomBytes(32);
    const kekUid = await registerAes(dispatcher, kek, WRAP_KEY);
    const uid = await registerAes(dispatcher, key, ENCRYPT);
    const payload = payloadOf(
      await call(dispatcher, "Get", [text("UniqueIdentifier", uid), wrappingSpecification(kekUid)]),
    );
    const block = keyBlockOf(payload);
    const wrapped = child(block, "KeyValue")!;
    assert.equal(wrapped.type, "ByteString");
    const unwrap = createDecipheriv("id-aes256-wrap", kek, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
    const plain = Buffer.concat([unwrap.update(bytesOf(wrapped)), unwrap.final()]);
    const keyValue = decodeTtlv(plain) as StructureItem;
    assert.deepEqual(Buffer.from(bytesOf(child(keyValue, "KeyMaterial")!)), key);
    const wrappingData = child(block, "KeyWrappingData") as StructureItem;
    assert.equal(enumName(child(wrappingData, "WrappingMethod")!), "Encrypt");
  });

  it("No Encoding wraps the key material alone", async () => {
    const dispatcher = newDispatcher();
    const kek = randomBytes(16);
    const key = randomBytes(24);
    const kekUid = await registerAes(dispatcher, kek, WRAP_KEY);
    const uid = await registerAes(dispatcher, key, ENCRYPT);
    const payload = payloadOf(
      await call(dispatcher, "Get", [
        text("UniqueIdentifier", uid),
        wrappingSpecification(kekUid, [enumItem("EncodingOption", "NoEncoding")]),
      ]),
    );
    const wrapped = bytesOf(child(keyBlockOf(payload), "KeyValue")!);
    const unwrap = createDecipheriv("id-aes128-wrap", kek, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
    assert.deepEqual(Buffer.concat([unwrap.update(wrapped), unwrap.final()]), key);
  });

  it("AES Key Wrap with Padding wraps odd lengths", async () => {
    const dispatcher = newDispatcher();
    const kek = randomBytes(32);
    // A 20-byte HMAC-SHA1 key: AES keys have no length that needs padding.
    const secret = randomBytes(20);
    const kekUid = await registerAes(dispatcher, kek, WRAP_KEY);
    const uid = await registerAes(dispatcher, secret, ENCRYPT, [], "HMAC_SHA1");
    const payload = payloadOf(
      await call(dispatcher, "Get", [
        text("UniqueIdentifier", uid),
        wrappingSpecification(
          kekUid,
          [enumItem("EncodingOption", "NoEncoding")],
          "AESKeyWrapPadding",
        ),
      ]),
    );
    const wrapped = bytesOf(child(keyBlockOf(payload), "KeyValue")!);
    const unwrap = createDecipheriv("id-aes256-wrap-pad", kek, Buffer.from("a65959a6", "hex"));
    assert.deepEqual(Buffer.concat([unwrap.update(wrapped), unwrap.final()]), secret);
  });

  it("Get wraps with an RSA public key in OAEP", async () => {
    const dispatcher = newDispatcher();
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const publicDer = publicKey.export({ format: "der", type: "pkcs1" });
    const publicUid = uidOf(
      payloadOf(
        await call(dispatcher, "Register", [
          enumItem("ObjectType", "PublicKey"),
          struct("Attributes", [integer("CryptographicUsageMask", WRAP_KEY), activeSince()]),
          struct("PublicKey", [
            struct("KeyBlock", [
              enumItem("KeyFormatType", "PKCS_1"),
              struct("KeyValue", [bytes("KeyMaterial", publicDer)]),
              enumItem("CryptographicAlgorithm", "RSA"),
              integer("CryptographicLength", 2048),
            ]),
          ]),
        ]),
      ),
    );
    const key = randomBytes(32);
    const uid = await registerAes(dispatcher, key, ENCRYPT);
    const specification = struct("KeyWrappingSpecification", [
      enumItem("WrappingMethod", "Encrypt"),
      struct("EncryptionKeyInformation", [
        text("UniqueIdentifier", publicUid),
        struct("CryptographicParameters", [
          enumItem("PaddingMethod", "OAEP"),
          enumItem("HashingAlgorithm", "SHA_256"),
        ]),
      ]),
      enumItem("EncodingOption", "NoEncoding"),
    ]);
    const payload = payloadOf(
      await call(dispatcher, "Get", [text("UniqueIdentifier", uid), specification]),
    );
    const wrapped = bytesOf(child(keyBlockOf(payload), "KeyValue")!);
    const plain = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      wrapped,
    );
    assert.deepEqual(plain, key);
  });

  it("a Sensitive key leaves only wrapped", async () => {
    const dispatcher = newDispatcher();
    const kekUid = await registerAes(dispatcher, randomBytes(32), WRAP_KEY);
    const uid = await registerAes(dispatcher, randomBytes(32), ENCRYPT, [
      boolean("Sensitive", true),
    ]);
    const plain = await call(dispatcher, "Get", [text("UniqueIdentifier", uid)]);
    assert.equal(resultReason(plain), "Sensitive");
    const wrapped = await call(dispatcher, "Get", [
      text("UniqueIdentifier", uid),
      wrappingSpecification(kekUid),
    ]);
    assert.equal(resultStatus(wrapped), "Success");
  });

  it("wrapping errors get their Result Reasons", async () => {
    const dispatcher = newDispatcher();
    const noWrapUid = await registerAes(dispatcher, randomBytes(32), ENCRYPT);
    const kekUid = await registerAes(dispatcher, randomBytes(32), WRAP_KEY);
    const uid = await registerAes(dispatcher, randomBytes(32), ENCRYPT);
    const cases: [string, KmipItem, string][] = [
      ["no Wrap Key usage", wrappingSpecification(noWrapUid), "IncompatibleCryptographicUsageMask"],
      ["unknown wrapping key", wrappingSpecification("no-such-key"), "WrappingObjectNotFound"],
      ["unsupported mode", wrappingSpecification(kekUid, [], "CBC"), "KeyWrapTypeNotSupported"],
      [
        "MAC/sign method",
        struct("KeyWrappingSpecification", [enumItem("WrappingMethod", "MACSign")]),
        "KeyWrapTypeNotSupported",
      ],
      [
        "missing key information",
        struct("KeyWrappingSpecification", [enumItem("WrappingMethod", "Encrypt")]),
        "InvalidField",
      ],
    ];
    for (const [label, specification, reason] of cases) {
      const item = await call(dispatcher, "Get", [text("UniqueIdentifier", uid), specification]);
      assert.equal(resultReason(item), reason, label);
    }
  });

  it("a destroyed wrapping key cannot wrap", async () => {
    const dispatcher = newDispatcher();
    const kekUid = uidOf(
      payloadOf(
        await call(dispatcher, "Register", [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [integer("CryptographicUsageMask", WRAP_KEY)]),
          struct("SymmetricKey", [
            struct("KeyBlock", [
              enumItem("KeyFormatType", "Raw"),
              struct("KeyValue", [bytes("KeyMaterial", randomBytes(32))]),
              enumItem("CryptographicAlgorithm", "AES"),
              integer("CryptographicLength", 256),
            ]),
          ]),
        ]),
      ),
    );
    payloadOf(await call(dispatcher, "Destroy", [text("UniqueIdentifier", kekUid)]));
    const uid = await registerAes(dispatcher, randomBytes(32), ENCRYPT);
    const item = await call(dispatcher, "Get", [
      text("UniqueIdentifier", uid),
      wrappingSpecification(kekUid),
    ]);
    assert.equal(resultReason(item), "WrappingObjectDestroyed");
  });
});

function gcmParameters(): KmipItem {
  return struct("CryptographicParameters", [
    enumItem("BlockCipherMode", "GCM"),
    integer("TagLength", 16),
  ]);
}

async function callAs(
  dispatcher: Dispatcher,
  identity: string,
  operation: string,
  payload: readonly KmipItem[],
): Promise<StructureItem> {
  const response = decodeTtlv(
    await dispatcher.handleTtlv(encodeTtlv(requestMessage([2, 1], [[operation, payload]])), {
      identity,
    }),
  ) as StructureItem;
  return children(response, "BatchItem")[0] as StructureItem;
}

describe("KMIP streamed Encrypt and Decrypt", () => {
  it("streamed GCM matches one-shot encryption", async () => {
    const dispatcher = newDispatcher();
    const key = randomBytes(16);
    const uid = await registerAes(dispatcher, key, ENCRYPT | DECRYPT);
    const iv = randomBytes(12);
    const aad = randomBytes(20);
    const parts = [randomBytes(32), randomBytes(17), randomBytes(5)];
    const first = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        gcmParameters(),
        bytes("Data", parts[0]!),
        bytes("IVCounterNonce", iv),
        boolean("InitIndicator", true),
        bytes("AuthenticatedEncryptionAdditionalData", aad),
      ]),
    );
    const correlation = child(first, "CorrelationValue")!;
    const second = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        bytes("Data", parts[1]!),
        correlation,
      ]),
    );
    const last = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        bytes("Data", parts[2]!),
        correlation,
        boolean("FinalIndicator", true),
      ]),
    );
    const cipher = createCipheriv("aes-128-gcm", key, iv);
    cipher.setAAD(aad);
    const expected = Buffer.concat([cipher.update(Buffer.concat(parts)), cipher.final()]);
    const streamed = Buffer.concat(
      [first, second, last].map((payload) => Buffer.from(bytesOf(child(payload, "Data")!))),
    );
    assert.deepEqual(streamed, expected);
    assert.deepEqual(
      Buffer.from(bytesOf(child(last, "AuthenticatedEncryptionTag")!)),
      cipher.getAuthTag(),
    );
    assert.equal(child(last, "CorrelationValue"), undefined);

    const reused = await call(dispatcher, "Encrypt", [
      text("UniqueIdentifier", uid),
      bytes("Data", parts[0]!),
      correlation,
    ]);
    assert.equal(resultReason(reused), "InvalidCorrelationValue");
  });

  it("streamed GCM decryption checks the tag", async () => {
    const dispatcher = newDispatcher();
    const key = randomBytes(32);
    const uid = await registerAes(dispatcher, key, ENCRYPT | DECRYPT);
    const iv = randomBytes(12);
    const plaintext = randomBytes(40);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();

    async function decryptIn2(finalTag: Buffer): Promise<[StructureItem, StructureItem]> {
      const first = await call(dispatcher, "Decrypt", [
        text("UniqueIdentifier", uid),
        gcmParameters(),
        bytes("Data", ciphertext.subarray(0, 16)),
        bytes("IVCounterNonce", iv),
        boolean("InitIndicator", true),
      ]);
      const last = await call(dispatcher, "Decrypt", [
        bytes("Data", ciphertext.subarray(16)),
        child(payloadOf(first), "CorrelationValue")!,
        boolean("FinalIndicator", true),
        bytes("AuthenticatedEncryptionTag", finalTag),
      ]);
      return [first, last];
    }

    const [first, last] = await decryptIn2(tag);
    const output = Buffer.concat([
      Buffer.from(bytesOf(child(payloadOf(first), "Data")!)),
      Buffer.from(bytesOf(child(payloadOf(last), "Data")!)),
    ]);
    assert.deepEqual(output, plaintext);

    const badTag = Buffer.from(tag);
    badTag[0]! ^= 1;
    const [, rejected] = await decryptIn2(badTag);
    assert.equal(resultReason(rejected), "CryptographicFailure");
  });

  it("streamed CBC with padding matches one-shot", async () => {
    const dispatcher = newDispatcher();
    const key = randomBytes(16);
    const uid = await registerAes(dispatcher, key, ENCRYPT);
    const iv = randomBytes(16);
    const parts = [randomBytes(10), randomBytes(30)];
    const parameters = struct("CryptographicParameters", [
      enumItem("BlockCipherMode", "CBC"),
      enumItem("PaddingMethod", "PKCS5"),
    ]);
    const first = payloadOf(
      await call(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        parameters,
        bytes("Data", parts[0]!),
        bytes("IVCounterNonce", iv),
        boolean("InitIndicator", true),
      ]),
    );
    const last = payloadOf(
      await call(dispatcher, "Encrypt", [
        bytes("Data", parts[1]!),
        child(first, "CorrelationValue")!,
        boolean("FinalIndicator", true),
      ]),
    );
    const cipher = createCipheriv("aes-128-cbc", key, iv);
    const expected = Buffer.concat([cipher.update(Buffer.concat(parts)), cipher.final()]);
    const streamed = Buffer.concat([
      Buffer.from(bytesOf(child(first, "Data")!)),
      Buffer.from(bytesOf(child(last, "Data")!)),
    ]);
    assert.deepEqual(streamed, expected);
  });

  it("a stream continues only for its own client and operation", async () => {
    const dispatcher = newDispatcher();
    const uid = await registerAes(dispatcher, randomBytes(16), ENCRYPT | DECRYPT);
    const first = payloadOf(
      await callAs(dispatcher, "alice", "Encrypt", [
        text("UniqueIdentifier", uid),
        gcmParameters(),
        bytes("Data", randomBytes(16)),
        bytes("IVCounterNonce", randomBytes(12)),
        boolean("InitIndicator", true),
      ]),
    );
    const correlation = child(first, "CorrelationValue")!;
    const other = await callAs(dispatcher, "mallory", "Encrypt", [
      bytes("Data", randomBytes(16)),
      correlation,
    ]);
    assert.equal(resultReason(other), "InvalidCorrelationValue");
    const wrongOperation = await callAs(dispatcher, "alice", "Decrypt", [
      bytes("Data", randomBytes(16)),
      correlation,
    ]);
    assert.equal(resultReason(wrongOperation), "InvalidCorrelationValue");
    const unknown = await callAs(dispatcher, "alice", "Encrypt", [
      bytes("Data", randomBytes(16)),
      bytes("CorrelationValue", randomBytes(16)),
    ]);
    assert.equal(resultReason(unknown), "InvalidCorrelationValue");
  });

  it("stream start checks the usage mask", async () => {
    const dispatcher = newDispatcher();
    const item = await call(dispatcher, "Encrypt", [
      text("UniqueIdentifier", await registerAes(dispatcher, randomBytes(16), DECRYPT)),
      bytes("Data", randomBytes(16)),
      boolean("InitIndicator", true),
    ]);
    assert.equal(resultReason(item), "IncompatibleCryptographicUsageMask");
  });
});

describe("CryptoStreamTable", () => {
  function fakeStream(identity: string) {
    const cipher = createCipheriv("aes-128-ctr", randomBytes(16), randomBytes(16));
    return {
      operation: "Encrypt" as const,
      uid: "uid-1",
      identity,
      cipher: cipher as never,
      aead: false,
      tagLength: 16,
    };
  }

  it("limits open streams in total and per client", () => {
    const table = new CryptoStreamTable({ maxStreams: 3, maxStreamsPerClient: 2 });
    table.open(fakeStream("a"));
    table.open(fakeStream("a"));
    assert.throws(() => table.open(fakeStream("a")), { resultReason: "ServerLimitExceeded" });
    table.open(fakeStream("b"));
    assert.throws(() => table.open(fakeStream("c")), { resultReason: "ServerLimitExceeded" });
    assert.equal(table.size, 3);
  });

  it("drops idle streams", () => {
    let now = 0;
    const table = new CryptoStreamTable({ idleTimeoutMs: 1000, now: () => now });
    const first = table.open(fakeStream("a"));
    now = 900;
    table.continue(first, "Encrypt", "a");
    now = 1800;
    assert.equal(table.size, 1);
    now = 1900;
    assert.equal(table.size, 0);
    assert.throws(() => table.continue(first, "Encrypt", "a"), {
      resultReason: "InvalidCorrelationValue",
    });
  });
});
