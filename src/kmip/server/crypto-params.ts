/**
 * Cryptographic Parameters: read from the request, with the object's
 * Cryptographic Parameters attribute filling the fields the request omits.
 */
import type { StructureItem } from "../item.ts";
import { child, enumName, optionalEnum, optionalInteger, tag } from "./items.ts";
import type { KmipObject } from "./object-store.ts";
import { findAttribute } from "./objects.ts";

export interface CryptoParameters {
  blockCipherMode?: string;
  paddingMethod?: string;
  hashingAlgorithm?: string;
  cryptographicAlgorithm?: string;
  digitalSignatureAlgorithm?: string;
  tagLength?: number;
  ivLength?: number;
  saltLength?: number;
  maskGeneratorHashingAlgorithm?: string;
  randomIv?: boolean;
}

function readParameters(structure: StructureItem): CryptoParameters {
  const parameters: CryptoParameters = {};
  const set = <K extends keyof CryptoParameters>(
    key: K,
    value: CryptoParameters[K] | undefined,
  ) => {
    if (value !== undefined) parameters[key] = value;
  };
  set("blockCipherMode", optionalEnum(structure, "BlockCipherMode"));
  set("paddingMethod", optionalEnum(structure, "PaddingMethod"));
  set("hashingAlgorithm", optionalEnum(structure, "HashingAlgorithm"));
  set("cryptographicAlgorithm", optionalEnum(structure, "CryptographicAlgorithm"));
  set("digitalSignatureAlgorithm", optionalEnum(structure, "DigitalSignatureAlgorithm"));
  set("tagLength", optionalInteger(structure, "TagLength"));
  set("ivLength", optionalInteger(structure, "IVLength"));
  set("saltLength", optionalInteger(structure, "SaltLength"));
  const mgf = child(structure, "MaskGeneratorHashingAlgorithm");
  if (mgf !== undefined) {
    set("maskGeneratorHashingAlgorithm", enumName({ ...mgf, tag: tag("HashingAlgorithm") }));
  }
  const random = child(structure, "RandomIV");
  if (random?.type === "Boolean") parameters.randomIv = random.value;
  return parameters;
}

/** Merges the request's parameters over the object's attribute. */
export function cryptoParameters(payload: StructureItem, object: KmipObject): CryptoParameters {
  const stored = findAttribute(object, "Cryptographic Parameters");
  const base = stored?.value.type === "Structure" ? readParameters(stored.value) : {};
  const requested = child(payload, "CryptographicParameters");
  const override = requested?.type === "Structure" ? readParameters(requested) : {};
  return { ...base, ...override };
}
