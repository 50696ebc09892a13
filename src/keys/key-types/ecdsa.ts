import type { EcdsaCurve } from "../../crypto/asymmetric-keys.ts";
import { type EcdsaOptions, ecdsaSign, ecdsaVerify } from "../../crypto/ecdsa.ts";
import type { KeyType } from "../types.ts";
import {
  checkAsymmetricSecret,
  checkPrehashedInput,
  generateAsymmetricVersion,
} from "./asymmetric.ts";
import type { KeyTypeDefinition, SignParams } from "./definition.ts";
import { versionPrivateKey, versionPublicKey } from "./material.ts";

function ecdsaOptions(params: SignParams): EcdsaOptions {
  return {
    hash: params.hashAlgorithm,
    prehashed: params.prehashed,
    // "asn1" is DER (RFC 3279); "jws" is raw r || s (RFC 7518, section 3.4).
    encoding: params.marshalingAlgorithm === "jws" ? "ieee-p1363" : "der",
  };
}

/** Builds the definition of an ECDSA key type on a NIST curve. */
export function ecdsaKeyType(type: KeyType, curve: EcdsaCurve): KeyTypeDefinition {
  const spec = { algorithm: "ecdsa", curve } as const;
  return {
    type,
    derivation: false,
    convergentEncryption: false,
    exportKinds: ["signing-key", "public-key"],
    secretExportFormat: "pkcs8-pem",
    publicKeyName: curve,
    asymmetricSpec: spec,
    generateVersion: () => generateAsymmetricVersion(spec),
    checkSecret: (version) => checkAsymmetricSecret(version, spec),
    signer: {
      sign(version, params) {
        checkPrehashedInput(params);
        const privateKey = versionPrivateKey(version);
        return { signature: ecdsaSign(privateKey, curve, params.input, ecdsaOptions(params)) };
      },
      verify(version, params, signature) {
        checkPrehashedInput(params);
        const publicKey = versionPublicKey(version);
        return ecdsaVerify(publicKey, curve, params.input, signature, ecdsaOptions(params));
      },
    },
  };
}
