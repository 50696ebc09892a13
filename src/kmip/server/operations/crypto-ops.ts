/**
 * Encrypt and Decrypt, in one request each, or streamed over several
 * requests (Init Indicator, Correlation Value, Final Indicator; see
 * streams.ts).
 *
 * Creating data (encrypt) needs an Active object before its Protect Stop
 * Date. Processing data (decrypt) also accepts Deactivated and Compromised
 * objects, from their Process Start Date.
 */
import { constants, privateDecrypt, publicEncrypt } from "node:crypto";
import type { KmipItem, StructureItem } from "../../item.ts";
import type { OperationContext } from "../context.ts";
import { type CryptoParameters, cryptoParameters } from "../crypto-params.ts";
import { KmipOperationError } from "../errors.ts";
import { type HsmCipherInput, hsmDecrypt, hsmEncrypt } from "../hsm-crypto.ts";
import { bytes } from "../items.ts";
import { privateKeyOf, publicKeyOf, secretBytes } from "../material.ts";
import type { KmipObject } from "../object-store.ts";
import { isStreamRequest, runStreamRequest } from "../streams.ts";
import { requestObject, uidItem } from "./common.ts";
import {
  algorithmOf,
  checkCreateUse,
  checkProcessUse,
  consumeUsage,
  data,
  nodeHash,
  optionalBuffer,
} from "./crypto-checks.ts";
import { symmetricDecrypt, symmetricEncrypt } from "./symmetric-crypto.ts";

/** Reads the data, IV, additional data and tag of an Encrypt or Decrypt request. */
function cipherInput(payload: StructureItem): HsmCipherInput {
  return {
    data: data(payload),
    iv: optionalBuffer(payload, "IVCounterNonce"),
    aad: optionalBuffer(payload, "AuthenticatedEncryptionAdditionalData"),
    tag: optionalBuffer(payload, "AuthenticatedEncryptionTag"),
  };
}

function isAsymmetric(object: KmipObject): boolean {
  return object.objectType === "PublicKey" || object.objectType === "PrivateKey";
}

function rsaPadding(parameters: CryptoParameters) {
  const padding = parameters.paddingMethod ?? "OAEP";
  if (padding === "OAEP") {
    return {
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: nodeHash(parameters.hashingAlgorithm, "sha1"),
    };
  }
  if (padding === "PKCS1V1_5") return { padding: constants.RSA_PKCS1_PADDING };
  throw new KmipOperationError(
    "InvalidField",
    `padding method ${padding} is not supported for RSA`,
  );
}

export async function encrypt(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  if (isStreamRequest(payload)) return runStreamRequest(payload, context, "Encrypt");
  const object = await requestObject(payload, context);
  checkCreateUse(object, "Encrypt", context.now);
  await consumeUsage(object, data(payload).length, context);
  const parameters = cryptoParameters(payload, object);
  if (isAsymmetric(object)) {
    const key = publicKeyOf(object);
    if (key.asymmetricKeyType !== "rsa") {
      throw new KmipOperationError(
        "FeatureNotSupported",
        `Encrypt with an asymmetric key needs an RSA key, not ${key.asymmetricKeyType}`,
      );
    }
    let output: Buffer;
    try {
      output = publicEncrypt({ key, ...rsaPadding(parameters) }, data(payload));
    } catch {
      throw new KmipOperationError("CryptographicFailure", "RSA encryption failed");
    }
    return [uidItem(object.uid), bytes("Data", output)];
  }
  const result =
    object.hsmObject === undefined
      ? symmetricEncrypt({
          algorithm: algorithmOf(object, parameters),
          key: secretBytes(object),
          parameters,
          data: data(payload),
          iv: optionalBuffer(payload, "IVCounterNonce"),
          aad: optionalBuffer(payload, "AuthenticatedEncryptionAdditionalData"),
          tag: undefined,
        })
      : await hsmEncrypt(object, object.hsmObject, parameters, cipherInput(payload), context);
  const items = [uidItem(object.uid), bytes("Data", result.data)];
  if (result.generatedIv !== undefined) items.push(bytes("IVCounterNonce", result.generatedIv));
  if (result.tag !== undefined) items.push(bytes("AuthenticatedEncryptionTag", result.tag));
  return items;
}

export async function decrypt(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  if (isStreamRequest(payload)) return runStreamRequest(payload, context, "Decrypt");
  const object = await requestObject(payload, context);
  checkProcessUse(object, "Decrypt", context.now);
  const parameters = cryptoParameters(payload, object);
  if (object.hsmObject !== undefined) {
    const output = await hsmDecrypt(
      object,
      object.hsmObject,
      parameters,
      cipherInput(payload),
      context,
    );
    return [uidItem(object.uid), bytes("Data", output)];
  }
  if (isAsymmetric(object)) {
    if (object.objectType !== "PrivateKey")
      throw new KmipOperationError("InvalidObjectType", "Decrypt needs a private key");
    const padding = rsaPadding(parameters);
    if (padding.padding === constants.RSA_PKCS1_PADDING) {
      // NOTE: node 20 rejects PKCS#1 v1.5 decryption (CVE-2023-46809, the Marvin attack).
      throw new KmipOperationError(
        "CryptographicFailure",
        "PKCS#1 v1.5 decryption is not supported",
      );
    }
    try {
      const output = privateDecrypt({ key: privateKeyOf(object), ...padding }, data(payload));
      return [uidItem(object.uid), bytes("Data", output)];
    } catch {
      throw new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
    }
  }
  const output = symmetricDecrypt({
    algorithm: algorithmOf(object, parameters),
    key: secretBytes(object),
    parameters,
    data: data(payload),
    iv: optionalBuffer(payload, "IVCounterNonce"),
    aad: optionalBuffer(payload, "AuthenticatedEncryptionAdditionalData"),
    tag: optionalBuffer(payload, "AuthenticatedEncryptionTag"),
  });
  return [uidItem(object.uid), bytes("Data", output)];
}
