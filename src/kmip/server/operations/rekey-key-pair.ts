/**
 * Re-key Key Pair: a new RSA or EC key pair of the old private key's
 * algorithm and size, which replaces the old pair. Each new key gets the
 * attributes and Names of the key it replaces (see replacement.ts), and
 * the keys are linked as Create Key Pair and Re-key link them.
 */
import { createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import type { RsaModulusBits } from "../../../hsm/rsa.ts";
import type { KmipItem, StructureItem } from "../../item.ts";
import { enumerationForTag } from "../../tags.ts";
import type { KmipAttribute } from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { invalidField, KmipOperationError, wrongState } from "../errors.ts";
import { hsmKeys, hsmReplacementAttributes, inHsm } from "../hsm-objects.ts";
import { bytes, child, struct, tag, text, textOf } from "../items.ts";
import { linkedUid } from "../managed-keys.ts";
import { hsmKeyContent, keyBlock, keyMaterialOf, privateKeyOf } from "../material.ts";
import type { KmipHsmObjectRef, KmipObject } from "../object-store.ts";
import { attributeScalar, loadObject } from "../objects.ts";
import { HSM_PAIR_LENGTHS } from "./key-pair.ts";
import { initialAttributes, RANDOM_NUMBER_GENERATOR, requestAttributes } from "./new-object.ts";
import {
  linkAttribute,
  replacementAttributes,
  replacementDates,
  requestOffset,
  withReplacementLink,
} from "./replacement.ts";

/** Generates in libuv's thread pool, so other requests keep running during a large RSA key. */
const generateKeyPairAsync = promisify(generateKeyPair);

/** Key sizes in bits of the named curves, by their OpenSSL name. */
const CURVE_BITS: Readonly<Record<string, number>> = {
  prime256v1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

/** The node:crypto DER export type of each private Key Format Type that `privateKeyOf` reads. */
const PRIVATE_EXPORT_TYPES: Readonly<Record<string, "pkcs1" | "pkcs8" | "sec1">> = {
  PKCS_1: "pkcs1",
  PKCS_8: "pkcs8",
  ECPrivateKey: "sec1",
};

/** Attributes that must match the old private key, because the new pair keeps its algorithm and size. */
const FIXED_ATTRIBUTES = ["Cryptographic Algorithm", "Cryptographic Length", "Recommended Curve"];

/** The new key pair's material, in the Key Format Types of the keys it replaces. */
interface NewPairMaterial {
  privateContent: KmipItem;
  publicContent: KmipItem;
  /** The token objects of a pair generated in the HSM. */
  hsmObject?: KmipHsmObjectRef;
}

/**
 * Generates the replacement of a pair generated in the HSM, in the same
 * token, with the old private key's algorithm and length. The private
 * key's record keeps the token reference, and the public key is stored in
 * the old public key's format.
 */
async function generateInHsmLike(
  oldPrivate: KmipObject,
  oldPublic: KmipObject | undefined,
  newPrivateUid: string,
  context: OperationContext,
): Promise<NewPairMaterial> {
  const algorithm = algorithmNameOf(oldPrivate);
  const length = attributeScalar(oldPrivate, "Cryptographic Length");
  const lengths = algorithm === undefined ? undefined : HSM_PAIR_LENGTHS[algorithm];
  if (lengths === undefined || typeof length !== "number" || !lengths.includes(length)) {
    throw new KmipOperationError(
      "FeatureNotSupported",
      "the HSM generates RSA pairs of 2048, 3072 or 4096 bits and EC pairs on P-256 only, and the old private key is neither",
    );
  }
  const isRsa = algorithm === "RSA";
  const keys = await hsmKeys(context);
  const hsmObject = await inHsm(() =>
    keys.generatePair(newPrivateUid, isRsa ? "RSA" : "EC", length as RsaModulusBits | 256),
  );
  const publicKey = createPublicKey({
    key: Buffer.from(hsmObject.publicKey ?? "", "base64"),
    format: "der",
    type: "spki",
  });
  const material = publicMaterial(publicKey, isRsa, publicFormatOf(oldPublic));
  return {
    privateContent: hsmKeyContent("PrivateKey", algorithm!, length),
    publicContent: struct("PublicKey", [
      keyBlock(material.format, bytes("KeyMaterial", material.der), algorithm!, length),
    ]),
    hsmObject,
  };
}

/**
 * Returns the request's Private Key Unique Identifier, or the batch's ID
 * Placeholder when the request has none.
 */
function requestPrivateUid(payload: StructureItem, context: OperationContext): string {
  const item = child(payload, "PrivateKeyUniqueIdentifier");
  if (item !== undefined) return textOf(item);
  if (context.idPlaceholder !== undefined) return context.idPlaceholder;
  throw invalidField(
    "Private Key Unique Identifier is missing and no earlier batch item set the ID Placeholder",
  );
}

/**
 * Returns the public key object the private key links to, or undefined
 * when it links to no public key. The client's policies must allow Re-key
 * Key Pair on that public key too (Permission Denied otherwise). Its
 * Private Key Link must name the private key (Invalid Field otherwise), so
 * a Public Key Link to another client's key cannot re-key that key.
 */
async function oldPublicKey(
  oldPrivate: KmipObject,
  context: OperationContext,
): Promise<KmipObject | undefined> {
  const uid = linkedUid(oldPrivate, "PublicKeyLink");
  if (uid === undefined) return undefined;
  context.authorize?.("ReKeyKeyPair", uid);
  const object = await context.store.find(uid);
  if (object === undefined || object.objectType !== "PublicKey") return undefined;
  if (linkedUid(object, "PrivateKeyLink") !== oldPrivate.uid) {
    throw invalidField(
      `invalid Public Key Link: the public key ${uid} has no Private Key Link to the private key ${oldPrivate.uid}, so the keys are not one pair. Link them both ways or remove the Public Key Link`,
    );
  }
  if (linkedUid(object, "ReplacementObjectLink") !== undefined) {
    throw wrongState(
      `the public key ${uid} of the pair was re-keyed already, so re-key its replacement instead`,
    );
  }
  return object;
}

/**
 * Rejects a request attribute that would give the new pair another
 * algorithm or size than the old private key has (Invalid Field).
 */
function requireSameKind(oldPrivate: KmipObject, requested: readonly KmipAttribute[]): void {
  for (const name of FIXED_ATTRIBUTES) {
    const old = attributeScalar(oldPrivate, name);
    const requestedValue = requested.find((attribute) => attribute.name === name)?.value;
    if (old === undefined || requestedValue === undefined || requestedValue.type === "Structure")
      continue;
    if (requestedValue.value !== old) {
      throw invalidField(
        `invalid ${name}: Re-key Key Pair keeps the old private key's algorithm and size, so omit ${name} or give the old key's value`,
      );
    }
  }
}

/**
 * Checks that no object other than the old keys has a Name among the
 * attributes (Non Unique Name Attribute otherwise). The old keys' Names
 * move to the new keys, and a Create Key Pair's common Name is on both.
 */
async function requireUniquePairNames(
  context: OperationContext,
  attributes: readonly KmipAttribute[],
  ownUids: ReadonlySet<string>,
): Promise<void> {
  for (const attribute of attributes) {
    if (attribute.name !== "Name") continue;
    const holders = await context.store.named(attribute.value);
    if (holders.some((uid) => !ownUids.has(uid))) {
      throw new KmipOperationError(
        "NonUniqueNameAttribute",
        "another object already has this Name",
      );
    }
  }
}

/** Returns the Key Format Type of the old public key's material, or undefined when it has none. */
function publicFormatOf(oldPublic: KmipObject | undefined): string | undefined {
  if (oldPublic?.content === undefined) return undefined;
  try {
    return keyMaterialOf(oldPublic).format;
  } catch (error) {
    if (error instanceof KmipOperationError) return undefined;
    throw error;
  }
}

/** Exports a new public key in the format of the old one: PKCS#1 for RSA when it was, X.509 otherwise. */
function publicMaterial(
  key: KeyObject,
  isRsa: boolean,
  oldFormat: string | undefined,
): { format: string; der: Buffer } {
  const pkcs1 = isRsa && (oldFormat === undefined || oldFormat === "PKCS_1");
  return pkcs1
    ? { format: "PKCS_1", der: key.export({ format: "der", type: "pkcs1" }) }
    : { format: "X_509", der: key.export({ format: "der", type: "spki" }) };
}

/** Returns the name of the old private key's Cryptographic Algorithm attribute ("ECDSA"), if set. */
function algorithmNameOf(oldPrivate: KmipObject): string | undefined {
  const value = attributeScalar(oldPrivate, "Cryptographic Algorithm");
  return typeof value === "number"
    ? enumerationForTag(tag("CryptographicAlgorithm"))?.byValue.get(value)
    : undefined;
}

/** The largest RSA public exponent node:crypto generates keys with. */
const MAX_GENERATED_EXPONENT = 0xffffffffn;

/**
 * Generates a key pair of the old private key's type and size: an RSA key
 * with the same modulus length and public exponent, or an EC key on the
 * same curve. Each new key is in the Key Format Type of the key it
 * replaces, and its Key Block names the old key's Cryptographic Algorithm.
 */
async function generateLike(
  oldPrivate: KmipObject,
  oldPublic: KmipObject | undefined,
): Promise<NewPairMaterial> {
  const oldKey = privateKeyOf(oldPrivate);
  const details = oldKey.asymmetricKeyDetails;

  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  let lengthBits: number | undefined;
  if (oldKey.asymmetricKeyType === "rsa" && details?.modulusLength !== undefined) {
    lengthBits = details.modulusLength;
    // node:crypto generates RSA keys with exponents that fit in 32 bits only.
    if (details.publicExponent !== undefined && details.publicExponent > MAX_GENERATED_EXPONENT) {
      throw new KmipOperationError(
        "FeatureNotSupported",
        "Re-key Key Pair makes RSA keys with a public exponent below 2^32 only; create a new key pair instead",
      );
    }
    pair = await generateKeyPairAsync("rsa", {
      modulusLength: details.modulusLength,
      ...(details.publicExponent === undefined
        ? {}
        : { publicExponent: Number(details.publicExponent) }),
    });
  } else if (oldKey.asymmetricKeyType === "ec" && details?.namedCurve !== undefined) {
    const lengthAttribute = attributeScalar(oldPrivate, "Cryptographic Length");
    lengthBits =
      CURVE_BITS[details.namedCurve] ??
      (typeof lengthAttribute === "number" ? lengthAttribute : undefined);
    if (lengthBits === undefined) {
      throw new KmipOperationError(
        "FeatureNotSupported",
        `Re-key Key Pair cannot tell the key size of curve ${details.namedCurve}`,
      );
    }
    pair = await generateKeyPairAsync("ec", { namedCurve: details.namedCurve });
  } else {
    throw new KmipOperationError(
      "FeatureNotSupported",
      `Re-key Key Pair replaces RSA and EC key pairs, not ${oldKey.asymmetricKeyType ?? "this key type"}`,
    );
  }

  const isRsa = oldKey.asymmetricKeyType === "rsa";
  const algorithm = algorithmNameOf(oldPrivate) ?? (isRsa ? "RSA" : "EC");
  const privateFormat = keyMaterialOf(oldPrivate).format;
  const exportType = PRIVATE_EXPORT_TYPES[privateFormat] ?? "pkcs8";
  const privateDer = pair.privateKey.export({ format: "der", type: exportType });
  const publicKey = publicMaterial(pair.publicKey, isRsa, publicFormatOf(oldPublic));

  return {
    privateContent: struct("PrivateKey", [
      keyBlock(
        PRIVATE_EXPORT_TYPES[privateFormat] === undefined ? "PKCS_8" : privateFormat,
        bytes("KeyMaterial", privateDer),
        algorithm,
        lengthBits,
      ),
    ]),
    publicContent: struct("PublicKey", [
      keyBlock(publicKey.format, bytes("KeyMaterial", publicKey.der), algorithm, lengthBits),
    ]),
  };
}

/**
 * Re-key Key Pair. The old private key names the pair, and its Public Key
 * Link names the old public key. An old private key without a linked
 * public key still gets a new pair, whose public key has only the
 * request's attributes. The new private key becomes the ID Placeholder.
 */
export async function reKeyKeyPair(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const privateUid = requestPrivateUid(payload, context);
  const oldPrivate = await loadObject(context, privateUid);
  context.idPlaceholder = privateUid;
  if (oldPrivate.objectType !== "PrivateKey") {
    throw new KmipOperationError(
      "InvalidObjectType",
      "Re-key Key Pair replaces key pairs and needs the Unique Identifier of a private key",
    );
  }
  if (linkedUid(oldPrivate, "ReplacementObjectLink") !== undefined) {
    throw wrongState("the private key was re-keyed already, so re-key its replacement instead");
  }
  const inHsmToken = oldPrivate.hsmObject !== undefined;
  const oldPublic = await oldPublicKey(oldPrivate, context);

  const offset = requestOffset(payload);
  const common = requestAttributes(payload, "CommonTemplateAttribute", "CommonAttributes");
  const privateRequested = [
    ...replacementDates(oldPrivate, offset, context.now),
    ...common,
    ...requestAttributes(payload, "PrivateKeyTemplateAttribute", "PrivateKeyAttributes"),
  ];
  const publicRequested = [
    ...replacementDates(oldPublic, offset, context.now),
    ...common,
    ...requestAttributes(payload, "PublicKeyTemplateAttribute", "PublicKeyAttributes"),
  ];
  requireSameKind(oldPrivate, privateRequested);
  requireSameKind(oldPrivate, publicRequested);
  const ownUids = new Set([oldPrivate.uid, ...(oldPublic === undefined ? [] : [oldPublic.uid])]);
  await requireUniquePairNames(context, [...privateRequested, ...publicRequested], ownUids);
  if (inHsmToken) hsmReplacementAttributes(privateRequested);

  const newPrivateUid = context.store.newUid();
  const newPublicUid = context.store.newUid();
  const material = inHsmToken
    ? await generateInHsmLike(oldPrivate, oldPublic, newPrivateUid, context)
    : await generateLike(oldPrivate, oldPublic);
  const newPrivate: KmipObject = {
    uid: newPrivateUid,
    objectType: "PrivateKey",
    attributes: [
      ...replacementAttributes(
        oldPrivate,
        newPrivateUid,
        material.privateContent,
        privateRequested,
        context.now,
      ),
      linkAttribute("PublicKeyLink", newPublicUid),
    ],
    content: material.privateContent,
    ...(material.hsmObject === undefined ? {} : { hsmObject: material.hsmObject }),
  };
  const publicAttributes =
    oldPublic === undefined
      ? [
          ...initialAttributes(
            newPublicUid,
            "PublicKey",
            publicRequested,
            material.publicContent,
            context.now,
          ),
          RANDOM_NUMBER_GENERATOR,
        ]
      : replacementAttributes(
          oldPublic,
          newPublicUid,
          material.publicContent,
          publicRequested,
          context.now,
        );
  const newPublic: KmipObject = {
    uid: newPublicUid,
    objectType: "PublicKey",
    attributes: [...publicAttributes, linkAttribute("PrivateKeyLink", newPrivateUid)],
    content: material.publicContent,
  };
  // The new private key goes first: with managed keys it becomes a new
  // version of the old key's managed key, which the new public key then refers to.
  await context.store.put(newPrivate);
  await context.store.put(newPublic);
  await context.store.put(withReplacementLink(oldPrivate, newPrivateUid));
  if (oldPublic !== undefined) {
    await context.store.put(withReplacementLink(oldPublic, newPublicUid));
  }
  context.idPlaceholder = newPrivateUid;
  return [
    text("PrivateKeyUniqueIdentifier", newPrivateUid),
    text("PublicKeyUniqueIdentifier", newPublicUid),
  ];
}
