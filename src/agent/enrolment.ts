import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { DeviceClient } from "./client.ts";
import { BOOTSTRAP_TOKEN } from "./config.ts";
import {
  buildCsr,
  certificateCommonNames,
  certificateInfo,
  certificateMatchesKey,
  encryptionJwk,
  generateP256Key,
  type Identity,
  loadIdentity,
  normalizeSerial,
  saveCertificate,
  savePendingKey,
} from "./identity.ts";
import { type CertificateResponse, parseCertificateResponse } from "./protocol.ts";
import type { Enrollment } from "./state.ts";

/** Settings and client that enrolment and renewal use. */
export interface EnrolmentContext {
  device: string;
  stateDir: string;
  client: DeviceClient;
}

/** Source of the bootstrap token: inline in the config or read from a file. */
export interface TokenSource {
  bootstrapToken: string | undefined;
  bootstrapTokenFile: string | undefined;
}

/** Returns the SHA-256 of a bootstrap token in hex: what state.json records instead of the token. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Returns the configured bootstrap token, reading the token file each time
 * so that an operator can replace it without a restart. Undefined when no
 * token is configured. Errors never contain the token.
 */
export async function readBootstrapToken(source: TokenSource): Promise<string | undefined> {
  if (source.bootstrapToken !== undefined) return source.bootstrapToken;
  if (source.bootstrapTokenFile === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(source.bootstrapTokenFile, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? "read error";
    throw new Error(`cannot read bootstrap_token_file ${source.bootstrapTokenFile} (${reason})`);
  }
  const token = text.trim();
  if (!BOOTSTRAP_TOKEN.test(token)) {
    throw new Error(
      `bootstrap_token_file ${source.bootstrapTokenFile} does not contain a bootstrap token ("kwb." followed by 43 base64url characters)`,
    );
  }
  return token;
}

/**
 * Builds the enrolment record of a certificate response. The expiry comes
 * from the certificate itself. The server's `renew_after` is kept unless
 * it falls outside the certificate's validity, because an agent that waits
 * past expiry can no longer renew. The default two-thirds point
 * (`enrollmentFromCertificate`) replaces it then.
 */
function enrollmentFrom(response: CertificateResponse, tokenSha256: string | null): Enrollment {
  const fromCertificate = enrollmentFromCertificate(response.device, response.certificate, null);
  const renewAfterValid =
    response.renew_after * 1000 >= certificateInfo(response.certificate).notBefore &&
    response.renew_after < fromCertificate.expiration;
  return {
    device: response.device,
    device_id: response.device_id,
    serial_number: normalizeSerial(response.serial_number),
    expiration: fromCertificate.expiration,
    renew_after: renewAfterValid ? response.renew_after : fromCertificate.renew_after,
    bootstrap_token_sha256: tokenSha256,
  };
}

/**
 * Rebuilds the enrolment record from the certificate itself, for a crash
 * between saving a certificate and saving state.json. The renewal time is
 * two thirds into the lifetime, as the server computes it.
 */
export function enrollmentFromCertificate(
  device: string,
  certificatePem: string,
  previous: Enrollment | null,
): Enrollment {
  const info = certificateInfo(certificatePem);
  return {
    device,
    device_id: previous?.device_id ?? "",
    serial_number: info.serial,
    expiration: Math.floor(info.notAfter / 1000),
    renew_after: Math.floor((info.notBefore + ((info.notAfter - info.notBefore) * 2) / 3) / 1000),
    bootstrap_token_sha256: previous?.bootstrap_token_sha256 ?? null,
  };
}

function checkIssued(response: CertificateResponse, device: string, privateKeyPem: string): void {
  if (response.device !== "" && response.device !== device) {
    throw new Error(
      `the server issued a certificate for device "${response.device}", not "${device}"`,
    );
  }
  if (!certificateMatchesKey(response.certificate, privateKeyPem)) {
    throw new Error("the server sent a certificate for another key than the one in the request");
  }
  // The response's "device" field may be absent, so the certificate itself is checked too.
  const commonNames = certificateCommonNames(response.certificate);
  if (commonNames.length !== 1 || commonNames[0] !== device) {
    throw new Error(
      `the server sent a certificate whose common name is ${JSON.stringify(commonNames.join(", "))}, not the device name "${device}"`,
    );
  }
  if (normalizeSerial(response.serial_number) !== certificateInfo(response.certificate).serial) {
    throw new Error("the server's serial_number does not match the certificate it sent");
  }
}

/** Joins PEM blocks, each ending with a newline. */
function joinPem(blocks: readonly string[]): string {
  return blocks.map((block) => (block.endsWith("\n") ? block : `${block}\n`)).join("");
}

/**
 * Enrols with a bootstrap token: sends a CSR for a key and the encryption
 * key's public JWK to `POST /v1/devices/enroll`, without a client
 * certificate, and saves the certificate and chain. The first enrolment
 * uses the identity key made at first start. A re-enrolment (`newKey`)
 * makes a new identity key and keeps the old one until the new certificate
 * is saved. Returns the reloaded identity and the enrolment record.
 */
export async function enrol(
  context: EnrolmentContext,
  identity: Identity,
  token: string,
  newKey: boolean,
): Promise<{ identity: Identity; enrollment: Enrollment }> {
  const privateKeyPem = newKey ? generateP256Key() : identity.privateKeyPem;
  if (newKey) await savePendingKey(context.stateDir, privateKeyPem);
  const { body } = await context.client.request("POST", "/v1/devices/enroll", {
    clientCertificate: false,
    body: {
      bootstrap_token: token,
      csr: await buildCsr(context.device, privateKeyPem),
      encryption_key: encryptionJwk(identity.encryptionKey),
    },
  });
  const response = parseCertificateResponse(body);
  checkIssued(response, context.device, privateKeyPem);
  await saveCertificate(context.stateDir, response.certificate, joinPem(response.ca_chain), newKey);
  return {
    identity: await loadIdentity(context.stateDir),
    enrollment: enrollmentFrom(response, tokenDigest(token)),
  };
}

/**
 * Renews the identity certificate over mutual TLS with a new key pair. The
 * new private key is written before the request; the old key and
 * certificate stay in use until the new certificate is saved.
 */
export async function renew(
  context: EnrolmentContext,
  previous: Enrollment,
): Promise<{ identity: Identity; enrollment: Enrollment }> {
  const privateKeyPem = generateP256Key();
  await savePendingKey(context.stateDir, privateKeyPem);
  const { body } = await context.client.request("POST", "/v1/devices/self/renew", {
    body: { csr: await buildCsr(context.device, privateKeyPem) },
  });
  const response = parseCertificateResponse(body);
  checkIssued(response, context.device, privateKeyPem);
  await saveCertificate(context.stateDir, response.certificate, joinPem(response.ca_chain), true);
  return {
    identity: await loadIdentity(context.stateDir),
    enrollment: enrollmentFrom(response, previous.bootstrap_token_sha256),
  };
}
