/**
 * Sign, Signature Verify, MAC, MAC Verify and Hash, in one request each.
 */
import {
  constants,
  createHash,
  createHmac,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  timingSafeEqual,
} from "node:crypto";
import type { KmipItem, StructureItem } from "../../item.ts";
import type { OperationContext } from "../context.ts";
import { type CryptoParameters, cryptoParameters } from "../crypto-params.ts";
import { invalidField, KmipOperationError } from "../errors.ts";
import { hsmSign } from "../hsm-crypto.ts";
import { bytes, bytesOf, child, enumItem, enumName, requireChild } from "../items.ts";
import { privateKeyOf, publicKeyOf, secretBytes } from "../material.ts";
import type { KmipObject } from "../object-store.ts";
import { requestObject, uidItem } from "./common.ts";
import {
  algorithmOf,
  checkCreateUse,
  checkProcessUse,
  data,
  nodeHash,
  rejectStreaming,
} from "./crypto-checks.ts";

/**
 * Reads the hash and RSA padding of a signing request: the Hashing
 * Algorithm and Padding Method, or a Digital Signature Algorithm that
 * names both (such as SHA256WithRSAEncryption or RSASSA-PSS).
 */
function signatureChoice(parameters: CryptoParameters): {
  hashName: string | undefined;
  pss: boolean;
  saltLength: number | undefined;
} {
  let hash = parameters.hashingAlgorithm;
  let padding = parameters.paddingMethod;
  const dsa = parameters.digitalSignatureAlgorithm;
  if (dsa !== undefined) {
    // Names such as SHA_256WithRSAEncryption, SHA3_256WithRSAEncryption and ECDSAWithSHA256.
    const match = /SHA(3)?_?(\d+)/i.exec(dsa);
    if (match !== null) hash = `${match[1] === undefined ? "SHA" : "SHA3"}_${match[2]}`;
    if (/PSS/i.test(dsa)) padding = "PSS";
  }
  return { hashName: hash, pss: padding === "PSS", saltLength: parameters.saltLength };
}

/**
 * Rejects a Digital Signature Algorithm made for another key type (an
 * ECDSA algorithm with an RSA key, or an RSA one with an EC key), which
 * would otherwise sign with the key's own algorithm.
 */
function checkAlgorithmFitsKey(key: KeyObject, algorithm: string | undefined): void {
  if (algorithm === undefined) return;
  const type = key.asymmetricKeyType;
  const rsaKey = type === "rsa" || type === "rsa-pss";
  const ecdsa = /ECDSA/i.test(algorithm);
  const rsa = !ecdsa && /RSA|PSS/i.test(algorithm);
  if ((ecdsa && type !== "ec") || (rsa && !rsaKey)) {
    throw new KmipOperationError(
      "InvalidField",
      `Digital Signature Algorithm ${algorithm} does not fit the ${type} key`,
    );
  }
}

/** Node sign/verify options for an RSA or EC key and the parameters. */
function signatureOptions(key: KeyObject, parameters: CryptoParameters, signing: boolean) {
  checkAlgorithmFitsKey(key, parameters.digitalSignatureAlgorithm);
  const choice = signatureChoice(parameters);
  const padding = choice.pss ? "PSS" : parameters.paddingMethod;
  const nodeHashName = nodeHash(choice.hashName);
  if (key.asymmetricKeyType === "rsa" || key.asymmetricKeyType === "rsa-pss") {
    if (padding === "PSS") {
      return {
        hash: nodeHashName,
        options: {
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength:
            parameters.saltLength ??
            (signing ? constants.RSA_PSS_SALTLEN_DIGEST : constants.RSA_PSS_SALTLEN_AUTO),
        },
      };
    }
    return { hash: nodeHashName, options: { padding: constants.RSA_PKCS1_PADDING } };
  }
  if (key.asymmetricKeyType === "ec")
    return { hash: nodeHashName, options: { dsaEncoding: "der" as const } };
  if (key.asymmetricKeyType === "ed25519") return { hash: null, options: {} };
  throw new KmipOperationError("FeatureNotSupported", "the key type cannot sign");
}

export async function sign(payload: StructureItem, context: OperationContext): Promise<KmipItem[]> {
  rejectStreaming(payload);
  const object = await requestObject(payload, context);
  checkCreateUse(object, "Sign", context.now);
  if (object.objectType !== "PrivateKey")
    throw new KmipOperationError("InvalidObjectType", "Sign needs a private key");
  if (object.hsmObject !== undefined) {
    const signature = await hsmSign(
      object,
      object.hsmObject,
      signatureChoice(cryptoParameters(payload, object)),
      data(payload),
      context,
    );
    return [uidItem(object.uid), bytes("SignatureData", signature)];
  }
  const key = privateKeyOf(object);
  const { hash, options } = signatureOptions(key, cryptoParameters(payload, object), true);
  try {
    const signature = nodeSign(hash, data(payload), { key, ...options });
    return [uidItem(object.uid), bytes("SignatureData", signature)];
  } catch (error) {
    if (error instanceof KmipOperationError) throw error;
    throw new KmipOperationError("CryptographicFailure", "signing failed");
  }
}

export async function signatureVerify(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  rejectStreaming(payload);
  const object = await requestObject(payload, context);
  checkProcessUse(object, "Verify", context.now);
  const key = publicKeyOf(object);
  const { hash, options } = signatureOptions(key, cryptoParameters(payload, object), false);
  const signature = Buffer.from(bytesOf(requireChild(payload, "SignatureData")));
  let valid = false;
  try {
    valid = nodeVerify(hash, data(payload), { key, ...options }, signature);
  } catch {
    valid = false;
  }
  return [uidItem(object.uid), enumItem("ValidityIndicator", valid ? "Valid" : "Invalid")];
}

function macHash(object: KmipObject, parameters: CryptoParameters): string {
  const algorithm = parameters.cryptographicAlgorithm ?? algorithmOf(object, parameters);
  const match = /^HMAC_(SHA\d+|SHA3_\d+)$/.exec(algorithm);
  if (match === null) {
    throw new KmipOperationError("FeatureNotSupported", `${algorithm} is not a MAC algorithm`);
  }
  const hashName = match[1]!;
  return nodeHash(hashName.startsWith("SHA3_") ? hashName : hashName.replace(/^SHA/, "SHA_"));
}

function computeMac(object: KmipObject, payload: StructureItem): Buffer {
  const hash = macHash(object, cryptoParameters(payload, object));
  return createHmac(hash, secretBytes(object)).update(data(payload)).digest();
}

export async function mac(payload: StructureItem, context: OperationContext): Promise<KmipItem[]> {
  rejectStreaming(payload);
  const object = await requestObject(payload, context);
  checkCreateUse(object, "MACGenerate", context.now);
  return [uidItem(object.uid), bytes("MACData", computeMac(object, payload))];
}

export async function macVerify(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  rejectStreaming(payload);
  const object = await requestObject(payload, context);
  checkProcessUse(object, "MACVerify", context.now);
  const expected = computeMac(object, payload);
  const given = Buffer.from(bytesOf(requireChild(payload, "MACData")));
  const valid = given.length === expected.length && timingSafeEqual(given, expected);
  return [uidItem(object.uid), enumItem("ValidityIndicator", valid ? "Valid" : "Invalid")];
}

export async function hash(payload: StructureItem): Promise<KmipItem[]> {
  const parametersItem = child(payload, "CryptographicParameters");
  if (parametersItem?.type !== "Structure")
    throw invalidField("Cryptographic Parameters are missing");
  const algorithm = child(parametersItem, "HashingAlgorithm");
  if (algorithm === undefined) throw invalidField("Hashing Algorithm is missing");
  const name = nodeHash(enumName(algorithm));
  return [bytes("Data", createHash(name).update(data(payload)).digest())];
}
