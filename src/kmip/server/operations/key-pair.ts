/**
 * Create Key Pair (RSA and elliptic curve keys) and Re-key (a new symmetric
 * key with the old key's attributes, linked to it).
 */
import { createPublicKey, generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { AesKeyBytes } from "../../../hsm/aes-gcm.ts";
import type { RsaModulusBits } from "../../../hsm/rsa.ts";
import type { KmipItem, StructureItem } from "../../item.ts";
import { enumerationForTag } from "../../tags.ts";
import type { KmipAttribute } from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { KmipOperationError, wrongState } from "../errors.ts";
import {
  generatesInHsm,
  hsmKeyAttributes,
  hsmKeys,
  hsmReplacementAttributes,
  inHsm,
} from "../hsm-objects.ts";
import { bytes, struct, tag, text } from "../items.ts";
import { linkedUid } from "../managed-keys.ts";
import { hsmKeyContent, keyBlock, secretBytes, symmetricKeyContent } from "../material.ts";
import type { KmipHsmObjectRef, KmipObject } from "../object-store.ts";
import { attributeScalar } from "../objects.ts";
import { requestObject, requireUniqueNames, uidItem } from "./common.ts";
import { initialAttributes, RANDOM_NUMBER_GENERATOR, requestAttributes } from "./new-object.ts";
import {
  linkAttribute,
  replacementAttributes,
  replacementDates,
  requestOffset,
  withReplacementLink,
} from "./replacement.ts";

const CURVES: Readonly<Record<string, { node: string; bits: number }>> = {
  P_256: { node: "prime256v1", bits: 256 },
  P_384: { node: "secp384r1", bits: 384 },
  P_521: { node: "secp521r1", bits: 521 },
};

function scalarOf(attributes: readonly KmipAttribute[], name: string): unknown {
  const found = attributes.find((attribute) => attribute.name === name);
  return found === undefined || found.value.type === "Structure" ? undefined : found.value.value;
}

function enumNameOf(tagName: string, value: unknown): string | undefined {
  return typeof value === "number"
    ? enumerationForTag(tag(tagName))?.byValue.get(value)
    : undefined;
}

/** Generates in libuv's thread pool, so TLS handshakes and timers keep running during a large RSA key. */
const generateKeyPairAsync = promisify(generateKeyPair);

async function generate(common: readonly KmipAttribute[]) {
  const algorithm = enumNameOf(
    "CryptographicAlgorithm",
    scalarOf(common, "Cryptographic Algorithm"),
  );
  const length = scalarOf(common, "Cryptographic Length");
  if (algorithm === "RSA") {
    if (typeof length !== "number" || length < 2048 || length > 8192 || length % 8 !== 0) {
      throw new KmipOperationError(
        "InvalidField",
        "RSA keys need a Cryptographic Length from 2048 to 8192 bits",
      );
    }
    const pair = await generateKeyPairAsync("rsa", { modulusLength: length });
    return {
      algorithm,
      length,
      privateFormat: "PKCS_1",
      privateDer: pair.privateKey.export({ format: "der", type: "pkcs1" }),
      publicFormat: "PKCS_1",
      publicDer: pair.publicKey.export({ format: "der", type: "pkcs1" }),
    };
  }
  if (algorithm === "EC" || algorithm === "ECDSA") {
    const curveName =
      enumNameOf("RecommendedCurve", scalarOf(common, "Recommended Curve")) ??
      (typeof length === "number" ? `P_${length}` : undefined);
    const curve = curveName === undefined ? undefined : CURVES[curveName];
    if (curve === undefined) {
      throw new KmipOperationError(
        "InvalidField",
        "elliptic curve keys need the curve P-256, P-384 or P-521",
      );
    }
    const pair = await generateKeyPairAsync("ec", { namedCurve: curve.node });
    return {
      algorithm,
      length: curve.bits,
      privateFormat: "PKCS_8",
      privateDer: pair.privateKey.export({ format: "der", type: "pkcs8" }),
      publicFormat: "X_509",
      publicDer: pair.publicKey.export({ format: "der", type: "spki" }),
    };
  }
  throw new KmipOperationError(
    "FeatureNotSupported",
    `Create Key Pair makes RSA and EC keys, not ${algorithm ?? "an unnamed algorithm"}`,
  );
}

export async function createKeyPair(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const common = requestAttributes(payload, "CommonTemplateAttribute", "CommonAttributes");
  const privateOnly = requestAttributes(
    payload,
    "PrivateKeyTemplateAttribute",
    "PrivateKeyAttributes",
  );
  const publicOnly = requestAttributes(
    payload,
    "PublicKeyTemplateAttribute",
    "PublicKeyAttributes",
  );
  if (generatesInHsm(context, [...common, ...privateOnly])) {
    return createKeyPairInHsm(common, privateOnly, publicOnly, context);
  }
  const generated = await generate([...common, ...privateOnly]);
  const privateContent = struct("PrivateKey", [
    keyBlock(
      generated.privateFormat,
      bytes("KeyMaterial", generated.privateDer),
      generated.algorithm,
      generated.length,
    ),
  ]);
  const publicContent = struct("PublicKey", [
    keyBlock(
      generated.publicFormat,
      bytes("KeyMaterial", generated.publicDer),
      generated.algorithm,
      generated.length,
    ),
  ]);
  return storeKeyPair(
    context,
    {
      uid: context.store.newUid(),
      requested: [...common, ...privateOnly],
      content: privateContent,
      extra: [RANDOM_NUMBER_GENERATOR],
    },
    {
      uid: context.store.newUid(),
      requested: [...common, ...publicOnly],
      content: publicContent,
      extra: [RANDOM_NUMBER_GENERATOR],
    },
  );
}

/** One key of a new pair, before the server's initial attributes and the Link are added. */
interface NewPairKey {
  uid: string;
  /** The attributes of the request that apply to this key. */
  requested: readonly KmipAttribute[];
  content: KmipItem;
  /** Attributes stored after the Link, such as Random Number Generator. */
  extra?: readonly KmipAttribute[];
  hsmObject?: KmipHsmObjectRef;
}

/** Builds the stored object of one key of a new pair, with a Link to the other key, `linkedUid`. */
function pairKeyObject(
  key: NewPairKey,
  objectType: "PrivateKey" | "PublicKey",
  linkedUid: string,
  now: bigint,
): KmipObject {
  const linkType = objectType === "PrivateKey" ? "PublicKeyLink" : "PrivateKeyLink";
  return {
    uid: key.uid,
    objectType,
    attributes: [
      ...initialAttributes(key.uid, objectType, key.requested, key.content, now),
      linkAttribute(linkType, linkedUid),
      ...(key.extra ?? []),
    ],
    content: key.content,
    ...(key.hsmObject === undefined ? {} : { hsmObject: key.hsmObject }),
  };
}

/**
 * Stores the private key and then the public key of a new pair, makes the
 * private key the ID Placeholder and returns the Create Key Pair response
 * payload.
 */
async function storeKeyPair(
  context: OperationContext,
  privateKey: NewPairKey,
  publicKey: NewPairKey,
): Promise<KmipItem[]> {
  await context.store.put(pairKeyObject(privateKey, "PrivateKey", publicKey.uid, context.now));
  await context.store.put(pairKeyObject(publicKey, "PublicKey", privateKey.uid, context.now));
  context.idPlaceholder = privateKey.uid;
  return [
    text("PrivateKeyUniqueIdentifier", privateKey.uid),
    text("PublicKeyUniqueIdentifier", publicKey.uid),
  ];
}

/** Key pairs the HSM generates, by Cryptographic Algorithm: the lengths in bits each takes. */
export const HSM_PAIR_LENGTHS: Readonly<Record<string, readonly number[]>> = {
  RSA: [2048, 3072, 4096],
  EC: [256],
  ECDSA: [256],
};

/** Attributes of a Create Key Pair's common set that describe the private key only. */
const PRIVATE_PROTECTION = new Set(["Extractable", "Sensitive"]);

/**
 * Generates a key pair in the HSM (see hsm-objects.ts): an RSA key of
 * 2048, 3072 or 4096 bits or an EC key on P-256. The private key's record
 * keeps the token reference and the public key; the public key is an
 * ordinary object whose material Keyward stores. Extractable and Sensitive
 * from the common attributes apply to the private key only, so Get still
 * returns the public key.
 */
async function createKeyPairInHsm(
  common: readonly KmipAttribute[],
  privateOnly: readonly KmipAttribute[],
  publicOnly: readonly KmipAttribute[],
  context: OperationContext,
): Promise<KmipItem[]> {
  const privateAttributes = [...common, ...privateOnly];
  const algorithm = enumNameOf(
    "CryptographicAlgorithm",
    scalarOf(privateAttributes, "Cryptographic Algorithm"),
  );
  const curve = enumNameOf("RecommendedCurve", scalarOf(privateAttributes, "Recommended Curve"));
  const requested = scalarOf(privateAttributes, "Cryptographic Length");
  // A curve fixes the length: only P-256 is generated in the HSM.
  let length = requested;
  if (curve !== undefined) length = curve === "P_256" ? 256 : undefined;
  const lengths = algorithm === undefined ? undefined : HSM_PAIR_LENGTHS[algorithm];
  if (lengths === undefined || typeof length !== "number" || !lengths.includes(length)) {
    throw new KmipOperationError(
      "InvalidField",
      "key pairs with Extractable false are generated in the HSM, which makes RSA keys of 2048, 3072 or 4096 bits and EC keys on P-256",
    );
  }
  const isRsa = algorithm === "RSA";
  const privateUid = context.store.newUid();
  const publicUid = context.store.newUid();
  const keys = await hsmKeys(context);
  const hsmObject = await inHsm(() =>
    keys.generatePair(privateUid, isRsa ? "RSA" : "EC", length as RsaModulusBits | 256),
  );
  const spki = createPublicKey({
    key: Buffer.from(hsmObject.publicKey ?? "", "base64"),
    format: "der",
    type: "spki",
  });
  const privateContent = hsmKeyContent("PrivateKey", algorithm!, length);
  const publicContent = struct("PublicKey", [
    keyBlock(
      isRsa ? "PKCS_1" : "X_509",
      bytes("KeyMaterial", spki.export({ format: "der", type: isRsa ? "pkcs1" : "spki" })),
      algorithm!,
      length,
    ),
  ]);
  const publicCommon = common.filter((attribute) => !PRIVATE_PROTECTION.has(attribute.name));
  return storeKeyPair(
    context,
    {
      uid: privateUid,
      requested: hsmKeyAttributes(privateAttributes),
      content: privateContent,
      hsmObject,
    },
    { uid: publicUid, requested: [...publicCommon, ...publicOnly], content: publicContent },
  );
}

export async function reKey(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const old = await requestObject(payload, context);
  if (old.objectType !== "SymmetricKey") {
    throw new KmipOperationError("InvalidObjectType", "Re-key replaces symmetric keys only");
  }
  // The replacements of one object form one line, as the versions of a managed key do.
  if (linkedUid(old, "ReplacementObjectLink") !== undefined) {
    throw wrongState("the object was re-keyed already; re-key its replacement instead");
  }
  if (old.hsmObject !== undefined) return reKeyInHsm(old, payload, context);
  const algorithm =
    enumNameOf("CryptographicAlgorithm", attributeScalar(old, "Cryptographic Algorithm")) ?? "AES";
  const length = secretBytes(old).length;
  const lengthBits = attributeScalar(old, "Cryptographic Length");
  const content = symmetricKeyContent(
    algorithm,
    randomBytes(length),
    typeof lengthBits === "number" ? lengthBits : length * 8,
  );
  const uid = context.store.newUid();
  const requested = [
    ...replacementDates(old, requestOffset(payload), context.now),
    ...requestAttributes(payload, "TemplateAttribute", "Attributes"),
  ];
  // The old object's names move to the replacement, so only other objects' names conflict.
  await requireUniqueNames(context, requested, old.uid);
  await context.store.put({
    uid,
    objectType: "SymmetricKey",
    attributes: replacementAttributes(old, uid, content, requested, context.now),
    content,
  });
  await context.store.put(withReplacementLink(old, uid));
  context.idPlaceholder = uid;
  return [uidItem(uid)];
}

/** AES key lengths the HSM generates, in bytes by length in bits. */
const AES_KEY_BYTES: Readonly<Record<string, AesKeyBytes>> = { "128": 16, "192": 24, "256": 32 };

/**
 * Re-keys a key generated in the HSM. The replacement is a non-extractable
 * AES key of the old key's length, generated in the same token. It copies
 * the old key's attributes as any replacement does, so it stays Sensitive
 * and not Extractable.
 */
async function reKeyInHsm(
  old: KmipObject,
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const lengthBits = attributeScalar(old, "Cryptographic Length");
  const lengthBytes = AES_KEY_BYTES[String(lengthBits)];
  if (lengthBytes === undefined) {
    throw new KmipOperationError(
      "InvalidField",
      "the key's Cryptographic Length must be 128, 192 or 256 bits to generate its replacement in the HSM",
    );
  }
  const requested = hsmReplacementAttributes([
    ...replacementDates(old, requestOffset(payload), context.now),
    ...requestAttributes(payload, "TemplateAttribute", "Attributes"),
  ]);
  await requireUniqueNames(context, requested, old.uid);
  const uid = context.store.newUid();
  const keys = await hsmKeys(context);
  const hsmObject = await inHsm(() => keys.generateAes(uid, lengthBytes));
  const content = hsmKeyContent("SymmetricKey", "AES", lengthBytes * 8);
  await context.store.put({
    uid,
    objectType: "SymmetricKey",
    attributes: replacementAttributes(old, uid, content, requested, context.now),
    content,
    hsmObject,
  });
  await context.store.put(withReplacementLink(old, uid));
  context.idPlaceholder = uid;
  return [uidItem(uid)];
}
