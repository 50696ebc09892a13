import { webcrypto } from "node:crypto";
import { exportJWK, type JWK } from "jose";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import type { RawAcmeClient } from "./jws-client.ts";

const P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A certificate the PKI mount issued for a P-256 key whose private key the test keeps. */
export interface LeafWithKey {
  /** The certificate, DER. */
  der: Buffer;
  /** Serial number, lower-case hex without separators. */
  serialHex: string;
  jwk: JWK;
  privateKey: webcrypto.CryptoKey;
}

/**
 * Signs a CSR for `commonName` with a new P-256 key through `signPath`
 * (such as `/v1/pki/sign/web` or `/v1/pki/issuer/<name>/sign/web`) and
 * returns the certificate with its key.
 */
export async function signWithNewKey(
  t: TestApp,
  signPath: string,
  commonName: string,
): Promise<LeafWithKey> {
  const keys = await webcrypto.subtle.generateKey(P256, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: P256,
  });
  const issued = await ok(t, "POST", signPath, {
    csr: csr.toString("pem"),
    common_name: commonName,
  });
  const certificate = new x509.X509Certificate(issued.certificate);
  return {
    der: Buffer.from(certificate.rawData),
    serialHex: String(issued.serial_number).replace(/:/g, "").toLowerCase(),
    jwk: await exportJWK(keys.publicKey),
    privateKey: keys.privateKey,
  };
}

/** Sends revokeCert signed with the certificate's own key (`jwk`, not `kid`). */
export function revokeWithCertificateKey(
  client: RawAcmeClient,
  leaf: LeafWithKey,
  payload: Record<string, unknown>,
) {
  return client.post(client.directory.revokeCert!, {
    payload,
    useJwk: true,
    header: { jwk: leaf.jwk },
    signingKey: leaf.privateKey,
  });
}
