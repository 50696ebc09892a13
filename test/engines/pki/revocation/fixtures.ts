import { spawnSync } from "node:child_process";
import type { webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CertID, id_pkix_ocsp_nonce, OCSPRequest, Request, TBSRequest } from "@peculiar/asn1-ocsp";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import { AlgorithmIdentifier, Extension } from "@peculiar/asn1-x509";
import type { RevocationSigner } from "../../../../src/engines/pki/revocation/types.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";

/** Key types a test CA can have, with the WebCrypto parameters that make and use them. */
export const KEY_ALGORITHMS = {
  "ecdsa-p256": { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" },
  "ecdsa-p384": { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" },
  "ecdsa-p521": { name: "ECDSA", namedCurve: "P-521", hash: "SHA-512" },
  rsa: {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  ed25519: { name: "Ed25519" },
} as const;

export type KeyKind = keyof typeof KEY_ALGORITHMS;

/** Fixed validity for every test certificate, so that runs do not depend on the clock. */
export const NOT_BEFORE = new Date("2020-01-01T00:00:00Z");
export const NOT_AFTER = new Date("2045-01-01T00:00:00Z");

export interface TestCa extends RevocationSigner {
  kind: KeyKind;
  publicKey: webcrypto.CryptoKey;
}

async function generateKeys(kind: KeyKind): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHMS[kind], true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

/** Makes a self-signed root CA; `withSubjectKeyId: false` leaves out its subject key identifier. */
export async function makeCa(
  kind: KeyKind,
  options: { name?: string; withSubjectKeyId?: boolean } = {},
): Promise<TestCa> {
  const keys = await generateKeys(kind);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
  if (options.withSubjectKeyId !== false) {
    extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  }
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: options.name ?? `CN=Keyward Test CA ${kind}, O=Keyward Tests`,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    keys,
    signingAlgorithm: KEY_ALGORITHMS[kind],
    extensions,
  });
  return { kind, certificate, privateKey: keys.privateKey, publicKey: keys.publicKey };
}

export interface TestLeaf {
  certificate: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
}

/**
 * Issues an ECDSA P-256 end-entity certificate from `ca`. With
 * `ocspSigning`, it is a delegated OCSP responder certificate with the
 * id-kp-OCSPSigning extended key usage.
 */
export async function issueLeaf(
  ca: TestCa,
  serialHex: string,
  options: { commonName?: string; ocspSigning?: boolean } = {},
): Promise<TestLeaf> {
  const keys = await generateKeys("ecdsa-p256");
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    new x509.ExtendedKeyUsageExtension(
      options.ocspSigning
        ? [x509.ExtendedKeyUsage.ocspSigning]
        : [x509.ExtendedKeyUsage.serverAuth],
    ),
  ];
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
    subject: `CN=${options.commonName ?? `leaf ${serialHex}`}`,
    issuer: ca.certificate.subjectName,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: KEY_ALGORITHMS[ca.kind],
    extensions,
  });
  return { certificate, privateKey: keys.privateKey };
}

/** Writes a certificate as PEM into `dir` and returns the path. */
export function writePem(dir: string, name: string, certificate: x509.X509Certificate): string {
  const path = join(dir, name);
  writeFileSync(path, certificate.toString("pem"));
  return path;
}

/** Writes a CRL, given as DER, in PEM form and returns the path. */
export function writeCrlPem(dir: string, name: string, der: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, x509.PemConverter.encode(new Uint8Array(der).buffer, "X509 CRL"));
  return path;
}

/** Runs openssl with `args` and returns its exit status and combined output. */
export function openssl(args: string[]): { status: number | null; output: string } {
  const result = spawnSync("openssl", args, { encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

export const SHA1 = "1.3.14.3.2.26";
export const SHA256 = "2.16.840.1.101.3.4.2.1";
export const MD5 = "1.2.840.113549.2.5";
export const NULL_PARAMETERS = new Uint8Array([0x05, 0x00]).buffer;

export interface CertIdSpec {
  hashOid?: string;
  hashLength?: number;
  serial?: number[];
}

/** Builds a CertID with placeholder issuer hashes of the given length (20 unless set). */
export function certId(spec: CertIdSpec = {}): CertID {
  const length = spec.hashLength ?? 20;
  return new CertID({
    hashAlgorithm: new AlgorithmIdentifier({
      algorithm: spec.hashOid ?? SHA1,
      parameters: NULL_PARAMETERS,
    }),
    issuerNameHash: new OctetString(new Uint8Array(length).fill(1)),
    issuerKeyHash: new OctetString(new Uint8Array(length).fill(2)),
    serialNumber: new Uint8Array(spec.serial ?? [0x01, 0x23]).buffer,
  });
}

/** Encodes an OCSPRequest with asn1-ocsp; each nonce becomes one nonce extension. */
export function encodeRequest(certIds: CertID[], nonces: Uint8Array[] = []): Uint8Array {
  const tbsRequest = new TBSRequest({
    requestList: certIds.map((reqCert) => new Request({ reqCert })),
  });
  if (nonces.length > 0) {
    tbsRequest.requestExtensions = nonces.map(
      (nonce) =>
        new Extension({
          extnID: id_pkix_ocsp_nonce,
          critical: false,
          extnValue: new OctetString(nonce),
        }),
    );
  }
  return new Uint8Array(AsnConvert.serialize(new OCSPRequest({ tbsRequest })));
}
