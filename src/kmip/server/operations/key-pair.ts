/**
 * Create Key Pair (RSA and elliptic curve keys) and Re-key (a new symmetric
 * key with the old key's attributes, linked to it).
 */
import { generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { KmipItem, StructureItem } from "../../item.ts";
import { enumerationForTag } from "../../tags.ts";
import type { KmipAttribute } from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { KmipOperationError } from "../errors.ts";
import { bytes, enumItem, struct, tag, text } from "../items.ts";
import { keyBlock, secretBytes, symmetricKeyContent } from "../material.ts";
import { attributeScalar, replaceAttribute } from "../objects.ts";
import { requestObject, uidItem } from "./common.ts";
import { initialAttributes, RANDOM_NUMBER_GENERATOR, requestAttributes } from "./new-object.ts";

const CURVES: Readonly<Record<string, { node: string; bits: number }>> = {
  P_256: { node: "prime256v1", bits: 256 },
  P_384: { node: "secp384r1", bits: 384 },
  P_521: { node: "secp521r1", bits: 521 },
};

function linkAttribute(linkType: string, uid: string): KmipAttribute {
  return {
    name: "Link",
    value: struct("AttributeValue", [
      enumItem("LinkType", linkType),
      text("LinkedObjectIdentifier", uid),
    ]),
  };
}

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
  const privateUid = context.store.newUid();
  const publicUid = context.store.newUid();
  await context.store.put({
    uid: privateUid,
    objectType: "PrivateKey",
    attributes: [
      ...initialAttributes(
        privateUid,
        "PrivateKey",
        [...common, ...privateOnly],
        privateContent,
        context.now,
      ),
      linkAttribute("PublicKeyLink", publicUid),
      RANDOM_NUMBER_GENERATOR,
    ],
    content: privateContent,
  });
  await context.store.put({
    uid: publicUid,
    objectType: "PublicKey",
    attributes: [
      ...initialAttributes(
        publicUid,
        "PublicKey",
        [...common, ...publicOnly],
        publicContent,
        context.now,
      ),
      linkAttribute("PrivateKeyLink", privateUid),
      RANDOM_NUMBER_GENERATOR,
    ],
    content: publicContent,
  });
  context.idPlaceholder = privateUid;
  return [
    text("PrivateKeyUniqueIdentifier", privateUid),
    text("PublicKeyUniqueIdentifier", publicUid),
  ];
}

/** Attributes Re-key does not copy: the server sets them afresh for the new key. */
const NOT_COPIED = new Set([
  "Unique Identifier",
  "Digest",
  "State",
  "Initial Date",
  "Last Change Date",
  "Activation Date",
  "Deactivation Date",
  "Destroy Date",
  "Compromise Date",
  "Compromise Occurrence Date",
  "Revocation Reason",
  "Link",
]);

export async function reKey(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const old = await requestObject(payload, context);
  if (old.objectType !== "SymmetricKey") {
    throw new KmipOperationError("InvalidObjectType", "Re-key replaces symmetric keys only");
  }
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
  const copied = old.attributes.filter((attribute) => !NOT_COPIED.has(attribute.name));
  const requested = requestAttributes(payload, "TemplateAttribute", "Attributes");
  const attributes = initialAttributes(
    uid,
    "SymmetricKey",
    [...copied, ...requested],
    content,
    context.now,
  );
  await context.store.put({
    uid,
    objectType: "SymmetricKey",
    attributes: [
      ...attributes,
      linkAttribute("ReplacedObjectLink", old.uid),
      RANDOM_NUMBER_GENERATOR,
    ],
    content,
  });
  const updated = replaceAttribute(old, "Link", undefined);
  await context.store.put({
    ...updated,
    attributes: [
      ...updated.attributes,
      ...old.attributes.filter((attribute) => attribute.name === "Link"),
      linkAttribute("ReplacementObjectLink", uid),
    ],
  });
  context.idPlaceholder = uid;
  return [uidItem(uid)];
}
