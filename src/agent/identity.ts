import { createPrivateKey, createPublicKey, type KeyObject, webcrypto } from "node:crypto";
import { mkdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { generateKeys } from "../crypto/key-generation.ts";
import * as x509 from "../engines/pki/x509.ts";
import { syncDirectory, writeFileAtomic } from "./atomic-file.ts";

/** Files of the agent's identity in the state directory. */
export const IDENTITY_FILES = {
  /** P-256 private key of the identity certificate (PKCS#8 PEM, mode 0600). */
  key: "identity-key.pem",
  /** The identity certificate (PEM). */
  certificate: "identity-cert.pem",
  /** The CA chain sent with the certificate (PEM). */
  chain: "ca-chain.pem",
  /** P-256 private key the server encrypts secrets to (PKCS#8 PEM, mode 0600). */
  encryptionKey: "encryption-key.pem",
  /** A renewal's new private key, until its certificate is saved. */
  pendingKey: "identity-key.new.pem",
  /** A renewal's new certificate, between its arrival and the switch to the new key. */
  pendingCertificate: "identity-cert.new.pem",
} as const;

/** The public half of the encryption key as a JWK, as enrolment sends it. */
export interface EncryptionJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

/** The agent's keys and, once enrolled, its certificate. */
export interface Identity {
  privateKeyPem: string;
  /** Undefined before enrolment. */
  certificatePem: string | undefined;
  /** PEM of the CA chain, empty before enrolment. */
  chainPem: string;
  encryptionKey: KeyObject;
}

/** Serial number and validity read from a certificate. */
export interface CertificateInfo {
  /** Serial number as lowercase hex without leading zeros. */
  serial: string;
  /** Unix milliseconds. */
  notBefore: number;
  /** Unix milliseconds. */
  notAfter: number;
}

/** Generates a P-256 private key and returns it as PKCS#8 PEM. */
export function generateP256Key(): string {
  const { privateKey } = generateKeys({ type: "ec", namedCurve: "P-256" });
  return privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

async function readOrCreateKey(path: string): Promise<string> {
  const existing = await readOptional(path);
  if (existing !== undefined) return existing;
  const pem = generateP256Key();
  await writeFileAtomic(path, pem, { mode: 0o600 });
  return pem;
}

/** Returns the public key of a PEM private key as SubjectPublicKeyInfo DER. */
function spkiOf(privateKeyPem: string): Buffer {
  return createPublicKey(privateKeyPem).export({ format: "der", type: "spki" });
}

/** True when `certificatePem`'s public key is the public half of `privateKeyPem`. */
export function certificateMatchesKey(certificatePem: string, privateKeyPem: string): boolean {
  const certificate = new x509.X509Certificate(certificatePem);
  return Buffer.from(certificate.publicKey.rawData).equals(spkiOf(privateKeyPem));
}

/** Returns the common names (CN) in the subject of a PEM certificate. */
export function certificateCommonNames(certificatePem: string): string[] {
  return new x509.X509Certificate(certificatePem).subjectName.getField("CN");
}

/** Reads the serial number and validity of a PEM certificate. */
export function certificateInfo(certificatePem: string): CertificateInfo {
  const certificate = new x509.X509Certificate(certificatePem);
  return {
    serial: normalizeSerial(certificate.serialNumber),
    notBefore: certificate.notBefore.getTime(),
    notAfter: certificate.notAfter.getTime(),
  };
}

/** Normalises a serial number written as hex, with or without colons, for comparison. */
export function normalizeSerial(serial: string): string {
  return serial
    .replaceAll(":", "")
    .toLowerCase()
    .replace(/^0+(?=.)/, "");
}

/**
 * Completes a certificate switch that a crash interrupted. The new
 * certificate is saved before the switch starts, so when it exists the
 * switch goes ahead: the pending key (if it was not renamed yet) and then
 * the certificate take the place of the old ones. A pending key without a
 * certificate belongs to a request that never completed and is removed.
 */
async function recoverPendingSwitch(stateDir: string): Promise<void> {
  const pendingKey = join(stateDir, IDENTITY_FILES.pendingKey);
  const pendingCertificate = join(stateDir, IDENTITY_FILES.pendingCertificate);
  const certificate = await readOptional(pendingCertificate);
  const key = await readOptional(pendingKey);
  if (certificate !== undefined) {
    if (key !== undefined) await rename(pendingKey, join(stateDir, IDENTITY_FILES.key));
    await rename(pendingCertificate, join(stateDir, IDENTITY_FILES.certificate));
    await syncDirectory(stateDir);
  } else if (key !== undefined) {
    await unlink(pendingKey);
  }
}

/**
 * Opens the state directory (made with mode 0700 when missing), finishes an
 * interrupted certificate switch, and reads the identity. The identity key
 * and the encryption key are generated on first start, each written with
 * mode 0600.
 */
export async function loadIdentity(stateDir: string): Promise<Identity> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await recoverPendingSwitch(stateDir);
  const privateKeyPem = await readOrCreateKey(join(stateDir, IDENTITY_FILES.key));
  const encryptionPem = await readOrCreateKey(join(stateDir, IDENTITY_FILES.encryptionKey));
  const certificatePem = await readOptional(join(stateDir, IDENTITY_FILES.certificate));
  const chainPem = (await readOptional(join(stateDir, IDENTITY_FILES.chain))) ?? "";
  if (certificatePem !== undefined && !certificateMatchesKey(certificatePem, privateKeyPem)) {
    throw new Error(
      `${join(stateDir, IDENTITY_FILES.certificate)} does not belong to ${IDENTITY_FILES.key}; remove the certificate to enrol again`,
    );
  }
  return {
    privateKeyPem,
    certificatePem,
    chainPem,
    encryptionKey: createPrivateKey(encryptionPem),
  };
}

/** Returns the public JWK of the encryption key: `{kty, crv, x, y}` and no private part. */
export function encryptionJwk(encryptionKey: KeyObject): EncryptionJwk {
  const jwk = createPublicKey(encryptionKey).export({ format: "jwk" });
  return { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string };
}

/** Builds a PKCS#10 request (PEM) for `privateKeyPem`, signed with ECDSA SHA-256, subject CN = `device`. */
export async function buildCsr(device: string, privateKeyPem: string): Promise<string> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256" };
  const pkcs8 = createPrivateKey(privateKeyPem).export({ format: "der", type: "pkcs8" });
  const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, algorithm, false, ["sign"]);
  const publicKey = await webcrypto.subtle.importKey(
    "spki",
    spkiOf(privateKeyPem),
    algorithm,
    true,
    ["verify"],
  );
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: new x509.Name([{ "2.5.4.3": [device] }]),
    keys: { privateKey, publicKey },
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
  });
  return csr.toString("pem");
}

/** Writes a renewal's new private key (mode 0600) before the request that certifies it is sent. */
export async function savePendingKey(stateDir: string, privateKeyPem: string): Promise<void> {
  await writeFileAtomic(join(stateDir, IDENTITY_FILES.pendingKey), privateKeyPem, { mode: 0o600 });
}

/**
 * Installs a new certificate with its chain. With `newKey`, the pending key
 * becomes the identity key in the same switch: the certificate is saved as
 * pending first, then the key and the certificate are renamed into place,
 * and `loadIdentity` completes the renames if a crash interrupts them.
 */
export async function saveCertificate(
  stateDir: string,
  certificate: string,
  chainPem: string,
  newKey: boolean,
): Promise<void> {
  const certificatePem = certificate.endsWith("\n") ? certificate : `${certificate}\n`;
  await writeFileAtomic(join(stateDir, IDENTITY_FILES.chain), chainPem, { mode: 0o644 });
  if (!newKey) {
    await writeFileAtomic(join(stateDir, IDENTITY_FILES.certificate), certificatePem, {
      mode: 0o644,
    });
    return;
  }
  await writeFileAtomic(join(stateDir, IDENTITY_FILES.pendingCertificate), certificatePem, {
    mode: 0o644,
  });
  await recoverPendingSwitch(stateDir);
}
