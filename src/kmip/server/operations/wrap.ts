/**
 * Key wrapping for Get: the Key Value of the returned Key Block is
 * encrypted with another managed key, named by the request's Key Wrapping
 * Specification.
 *
 * Supported: the Encrypt wrapping method, with an AES key in NIST Key Wrap
 * (RFC 3394, the default for AES) or AES Key Wrap with Padding (RFC 5649),
 * or with an RSA public key in OAEP (the default) or PKCS#1 v1.5. The
 * Encoding Option TTLV Encoding (the default) wraps the whole Key Value
 * structure in TTLV; No Encoding wraps the Key Material bytes alone.
 */
import { constants, createCipheriv, publicEncrypt } from "node:crypto";
import type { KmipItem } from "../../item.ts";
import { encodeTtlv } from "../../ttlv.ts";
import type { OperationContext } from "../context.ts";
import { type CryptoParameters, cryptoParameters } from "../crypto-params.ts";
import { invalidField, KmipOperationError } from "../errors.ts";
import { asStructure, bytes, bytesOf, child, optionalEnum, struct, textOf } from "../items.ts";
import { keyBlockOf, publicKeyOf, secretBytes } from "../material.ts";
import type { KmipObject } from "../object-store.ts";
import { stateOf } from "../objects.ts";
import { checkCreateUse, nodeHash } from "./crypto-checks.ts";

/** The RFC 3394 default initial value; node:crypto's AES Key Wrap ciphers take it as their IV. */
const KEY_WRAP_IV = Buffer.from("a6a6a6a6a6a6a6a6", "hex");
/** The RFC 5649 alternative initial value prefix, for AES Key Wrap with Padding. */
const KEY_WRAP_PAD_IV = Buffer.from("a65959a6", "hex");

function unsupported(message: string): KmipOperationError {
  return new KmipOperationError("KeyWrapTypeNotSupported", message);
}

/** Loads the wrapping key and checks that it may wrap now. */
async function wrappingKey(uid: string, context: OperationContext): Promise<KmipObject> {
  const key = await context.store.find(uid);
  if (key === undefined) {
    throw new KmipOperationError(
      "WrappingObjectNotFound",
      `no wrapping key has the unique identifier "${uid}"`,
    );
  }
  const state = stateOf(key);
  if (state === "Destroyed" || state === "DestroyedCompromised" || key.content === undefined) {
    throw new KmipOperationError("WrappingObjectDestroyed", "the wrapping key was destroyed");
  }
  checkCreateUse(key, "WrapKey", context.now);
  return key;
}

function aesWrap(key: Buffer, parameters: CryptoParameters, plaintext: Buffer): Buffer {
  const mode = parameters.blockCipherMode ?? "NISTKeyWrap";
  if (![16, 24, 32].includes(key.length))
    throw invalidField("the AES wrapping key has an invalid length");
  const bits = key.length * 8;
  let cipher: ReturnType<typeof createCipheriv>;
  if (mode === "NISTKeyWrap") {
    if (plaintext.length < 16 || plaintext.length % 8 !== 0) {
      throw new KmipOperationError(
        "CryptographicFailure",
        "NIST Key Wrap needs at least 16 bytes in multiples of 8; use AES Key Wrap with Padding",
      );
    }
    cipher = createCipheriv(`id-aes${bits}-wrap`, key, KEY_WRAP_IV);
  } else if (mode === "AESKeyWrapPadding") {
    cipher = createCipheriv(`id-aes${bits}-wrap-pad`, key, KEY_WRAP_PAD_IV);
  } else {
    throw unsupported(
      `block cipher mode ${mode} cannot wrap keys; use NISTKeyWrap or AESKeyWrapPadding`,
    );
  }
  return Buffer.concat([cipher.update(plaintext), cipher.final()]);
}

function rsaWrap(key: KmipObject, parameters: CryptoParameters, plaintext: Buffer): Buffer {
  const padding = parameters.paddingMethod ?? "OAEP";
  if (padding !== "OAEP" && padding !== "PKCS1V1_5") {
    throw unsupported(`padding method ${padding} cannot wrap keys with RSA`);
  }
  try {
    return publicEncrypt(
      padding === "OAEP"
        ? {
            key: publicKeyOf(key),
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: nodeHash(parameters.hashingAlgorithm, "sha1"),
          }
        : { key: publicKeyOf(key), padding: constants.RSA_PKCS1_PADDING },
      plaintext,
    );
  } catch {
    throw new KmipOperationError(
      "CryptographicFailure",
      "RSA key wrapping failed; the key may be too long for the wrapping key",
    );
  }
}

/** Returns the bytes to wrap: the TTLV of the Key Value, or the Key Material alone. */
function wrapInput(keyValue: KmipItem, encoding: string): Buffer {
  if (encoding === "TTLVEncoding") return encodeTtlv(keyValue);
  const material = keyValue.type === "Structure" ? child(keyValue, "KeyMaterial") : undefined;
  if (material === undefined || material.type !== "ByteString") {
    throw new KmipOperationError(
      "EncodingOptionError",
      "No Encoding needs key material that is a byte string; use TTLV Encoding",
    );
  }
  return Buffer.from(bytesOf(material));
}

/**
 * Returns the Get content with its Key Value wrapped as the Key Wrapping
 * Specification requests, and the Key Wrapping Data that describes the wrapping.
 */
export async function wrapContent(
  content: KmipItem,
  specification: KmipItem,
  context: OperationContext,
): Promise<KmipItem> {
  const spec = asStructure(specification, "Key Wrapping Specification");
  const method = optionalEnum(spec, "WrappingMethod");
  if (method === undefined) throw invalidField("Wrapping Method is missing");
  if (method !== "Encrypt")
    throw unsupported(`wrapping method ${method} is not supported; use Encrypt`);
  if (child(spec, "MACSignatureKeyInformation") !== undefined) {
    throw unsupported("MAC/Signature Key Information is not supported");
  }
  if (child(spec, "AttributeName") !== undefined) {
    throw unsupported("wrapping attributes with the key (Attribute Name) is not supported");
  }
  const information = asStructure(
    child(spec, "EncryptionKeyInformation"),
    "Encryption Key Information",
  );
  const uidItem = child(information, "UniqueIdentifier");
  if (uidItem === undefined)
    throw invalidField("Encryption Key Information has no Unique Identifier");
  const encoding = optionalEnum(spec, "EncodingOption") ?? "TTLVEncoding";
  if (encoding !== "TTLVEncoding" && encoding !== "NoEncoding") {
    throw new KmipOperationError(
      "EncodingOptionError",
      `encoding option ${encoding} is not supported`,
    );
  }

  const block = keyBlockOf(content);
  const keyValue = block === undefined ? undefined : child(block, "KeyValue");
  if (block === undefined || keyValue === undefined || content.type !== "Structure") {
    throw new KmipOperationError(
      "InvalidObjectType",
      "only objects with a Key Block can be wrapped",
    );
  }
  // Wrapping uses a second key, which the client's policies must allow too.
  context.authorize?.("WrapKey", textOf(uidItem));
  const key = await wrappingKey(textOf(uidItem), context);
  if (key.hsmObject !== undefined) {
    throw unsupported("a wrapping key kept in an HSM cannot wrap keys yet");
  }
  const parameters = cryptoParameters(information, key);
  const plaintext = wrapInput(keyValue, encoding);
  let wrapped: Buffer;
  try {
    if (key.objectType === "SymmetricKey") {
      wrapped = aesWrap(secretBytes(key), parameters, plaintext);
    } else if (key.objectType === "PublicKey") {
      wrapped = rsaWrap(key, parameters, plaintext);
    } else {
      throw unsupported(
        `a ${key.objectType} cannot wrap keys; use a symmetric key or an RSA public key`,
      );
    }
  } finally {
    plaintext.fill(0);
  }

  const encodingItem = child(spec, "EncodingOption");
  const wrappingData = struct("KeyWrappingData", [
    child(spec, "WrappingMethod")!,
    information,
    ...(encodingItem === undefined ? [] : [encodingItem]),
  ]);
  const wrappedBlock = struct(
    "KeyBlock",
    block.value
      .map((item) => (item === keyValue ? bytes("KeyValue", wrapped) : item))
      .concat(wrappingData),
  );
  return { ...content, value: content.value.map((item) => (item === block ? wrappedBlock : item)) };
}
