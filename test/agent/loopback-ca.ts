import type { webcrypto } from "node:crypto";
import * as x509 from "../../src/engines/pki/x509.ts";

/** ECDSA P-256 with SHA-256, the algorithm of every key and signature here. */
export const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Generates an extractable P-256 key pair. */
export async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

/** Returns a private key as PKCS#8 PEM. */
export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** A test CA and the certificate it issued to a server on 127.0.0.1. */
export interface LoopbackCa {
  certificate: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
}

/**
 * Makes a CA named `caName`, valid for a day, and a server certificate for
 * IP 127.0.0.1 that it signed, for the fake servers of the agent tests.
 */
export async function makeLoopbackCa(caName: string): Promise<LoopbackCa> {
  const keys = await newKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${caName}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const serverKeys = await newKeys();
  const serverCertificate = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: "CN=127.0.0.1",
    issuer: certificate.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: serverKeys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  return {
    certificate,
    keys,
    caPem: certificate.toString("pem"),
    serverCertPem: serverCertificate.toString("pem"),
    serverKeyPem: await privateKeyPem(serverKeys.privateKey),
  };
}
