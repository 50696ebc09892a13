import { createPublicKey, type KeyObject, webcrypto } from "node:crypto";
import { isIP } from "node:net";
import { generateKeys } from "../crypto/key-generation.ts";
import { ipAddressBytes } from "../engines/pki/general-names.ts";
import * as x509 from "../engines/pki/x509.ts";

/** Key types the agent makes for service certificates. */
export const CERTIFICATE_KEY_TYPES = [
  "ec-p256",
  "ec-p384",
  "rsa-2048",
  "rsa-3072",
  "ed25519",
] as const;
export type CertificateKeyType = (typeof CERTIFICATE_KEY_TYPES)[number];

/** A key pair for a service certificate: the private key as PKCS#8 PEM, the public key as base64 SPKI DER. */
export interface CertificateKeyPair {
  privateKeyPem: string;
  publicKeySpki: string;
}

/** Returns the WebCrypto algorithm that signs a CSR with a key of `type`. */
function signingAlgorithm(type: CertificateKeyType) {
  switch (type) {
    case "ec-p256":
      return { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    case "ec-p384":
      return { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" };
    case "rsa-2048":
    case "rsa-3072":
      return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    case "ed25519":
      return { name: "Ed25519" };
  }
}

/** Generates a key pair of `type`. */
export function generateCertificateKey(type: CertificateKeyType): CertificateKeyPair {
  const pair =
    type === "ed25519"
      ? generateKeys({ type: "ed25519" })
      : type.startsWith("rsa-")
        ? generateKeys({ type: "rsa", modulusLength: Number(type.slice(4)) })
        : generateKeys({ type: "ec", namedCurve: type === "ec-p384" ? "P-384" : "P-256" });
  return {
    privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    publicKeySpki: spkiOf(pair.publicKey),
  };
}

/** Returns the base64 SubjectPublicKeyInfo DER of a public or private key. */
export function spkiOf(key: KeyObject): string {
  const publicKey = key.type === "public" ? key : createPublicKey(key);
  return (publicKey.export({ type: "spki", format: "der" }) as Buffer).toString("base64");
}

/** Returns the base64 SPKI DER of the public key in a PEM certificate, or undefined when it does not parse. */
export function certificatePublicKey(certificatePem: string): string | undefined {
  try {
    const certificate = new x509.X509Certificate(certificatePem);
    return Buffer.from(certificate.publicKey.rawData).toString("base64");
  } catch {
    return undefined;
  }
}

/**
 * Returns an IP address in the text form that @peculiar/x509 (2.2.0) encodes
 * correctly. The library reads each IPv6 group as hex, so an embedded IPv4
 * part (`::ffff:10.0.0.1`) would be encoded wrongly. IPv6 addresses are
 * therefore written as eight hex groups, which keeps the SAN's 16 bytes.
 */
function ipForEncoding(ip: string): string {
  const bytes = ipAddressBytes(ip);
  if (bytes.length === 4) return ip;
  const groups: string[] = [];
  for (let offset = 0; offset < 16; offset += 2) {
    groups.push(bytes.readUInt16BE(offset).toString(16));
  }
  return groups.join(":");
}

/**
 * Makes a PKCS#10 CSR in PEM signed with `key`, whose subject is only
 * `CN=<commonName>` and whose subject alternative names are `altNames`
 * (IP addresses as iPAddress, everything else as dNSName).
 */
export async function makeCertificateCsr(
  key: CertificateKeyPair,
  type: CertificateKeyType,
  names: { commonName: string; altNames: readonly string[] },
): Promise<string> {
  const algorithm = signingAlgorithm(type);
  const privateDer = Buffer.from(
    key.privateKeyPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""),
    "base64",
  );
  const privateKey = await webcrypto.subtle.importKey("pkcs8", privateDer, algorithm, false, [
    "sign",
  ]);
  const publicKey = await webcrypto.subtle.importKey(
    "spki",
    Buffer.from(key.publicKeySpki, "base64"),
    algorithm,
    true,
    ["verify"],
  );
  const extensions =
    names.altNames.length === 0
      ? []
      : [
          new x509.SubjectAlternativeNameExtension(
            names.altNames.map((name) =>
              isIP(name) !== 0
                ? { type: "ip", value: ipForEncoding(name) }
                : { type: "dns", value: name },
            ),
          ),
        ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // Built from a JSON name, so a common name with "," or "=" needs no escaping.
    name: [{ CN: [names.commonName] }],
    keys: { privateKey, publicKey },
    signingAlgorithm: algorithm,
    extensions,
  });
  return csr.toString("pem");
}
