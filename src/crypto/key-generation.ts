import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";

/** The key pairs `generateKeys` makes, with their parameters. */
export type KeyPairSpec =
  | { type: "ed25519" }
  | { type: "x25519" }
  | { type: "ec"; namedCurve: string }
  | { type: "rsa"; modulusLength: number; publicExponent?: number };

/** A generated key pair: its PKCS#8 and SPKI DER, and KeyObjects parsed from them. */
export interface GeneratedKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The private key as PKCS#8 DER. */
  pkcs8: Buffer;
  /** The public key as SubjectPublicKeyInfo DER. */
  spki: Buffer;
}

/**
 * Generates a key pair synchronously. The generation call encodes the keys
 * as DER, and the KeyObjects are parsed from those bytes.
 *
 * NOTE: on Node.js 20.20.2, a JWK export of a KeyObject that
 * `generateKeyPairSync` returned can deadlock the thread (seen in a gdb
 * backtrace, and reproduced with X25519 and P-256 keys under frequent
 * garbage collection). The export holds the key's mutex while it
 * allocates. A collection during that allocation frees the generation job,
 * whose destructor locks the same mutex. Parsed KeyObjects share no lock
 * with the job, so every key generated synchronously comes from here.
 */
export function generateKeys(spec: KeyPairSpec): GeneratedKeys {
  const { privateKey: pkcs8, publicKey: spki } = generateDer(spec);
  return {
    privateKey: createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }),
    publicKey: createPublicKey({ key: spki, format: "der", type: "spki" }),
    pkcs8,
    spki,
  };
}

function generateDer(spec: KeyPairSpec): { privateKey: Buffer; publicKey: Buffer } {
  switch (spec.type) {
    case "ed25519":
      return generateKeyPairSync("ed25519", {
        publicKeyEncoding: { format: "der", type: "spki" },
        privateKeyEncoding: { format: "der", type: "pkcs8" },
      });
    case "x25519":
      return generateKeyPairSync("x25519", {
        publicKeyEncoding: { format: "der", type: "spki" },
        privateKeyEncoding: { format: "der", type: "pkcs8" },
      });
    case "ec":
      return generateKeyPairSync("ec", {
        namedCurve: spec.namedCurve,
        publicKeyEncoding: { format: "der", type: "spki" },
        privateKeyEncoding: { format: "der", type: "pkcs8" },
      });
    case "rsa":
      return generateKeyPairSync("rsa", {
        modulusLength: spec.modulusLength,
        publicExponent: spec.publicExponent ?? 0x10001,
        publicKeyEncoding: { format: "der", type: "spki" },
        privateKeyEncoding: { format: "der", type: "pkcs8" },
      });
  }
}
