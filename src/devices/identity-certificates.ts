import { checkCsr } from "../engines/pki/csr.ts";
import { normaliseSerialHex } from "../engines/pki/key-pairs.ts";
import type { PkiService } from "../engines/pki/service.ts";
import { invalidField, isKeywardError, KeywardError } from "../errors.ts";
import type { DevicesConfig, IdentityCertificate } from "./types.ts";

/**
 * The owner that the PKI records of identity and assigned certificates
 * carry (see `CertificateRecord.owner`), so EST does not renew them.
 */
export const DEVICES_CERTIFICATE_OWNER = "devices";

/** Finds the PKI service mounted at a path. */
export type PkiResolver = (mount: string) => PkiService | undefined;

/** An identity certificate as enrolment and renewal return it. */
export interface IssuedIdentity {
  /** The certificate, PEM. */
  certificate: string;
  /** The issuing CA and its chain, PEM. */
  caChain: string[];
  /** Serial number, colon-separated hex as the PKI engine shows it. */
  serialNumber: string;
  /** Unix seconds. */
  expiration: number;
  /** Unix seconds: two thirds of the way from issuance to expiration. */
  renewAfter: number;
  /** The entry stored in the device record. */
  record: IdentityCertificate;
}

/**
 * Checks an identity CSR: a PKCS#10 request in PEM with a valid
 * self-signature, an EC P-256 or Ed25519 key, and the device's name as its
 * common name. Throws `invalid_field` naming `csr`.
 */
export async function checkIdentityCsr(csrText: string, deviceName: string): Promise<void> {
  let csr: Awaited<ReturnType<typeof checkCsr>>;
  try {
    csr = await checkCsr(csrText, "csr");
  } catch (error) {
    if (isKeywardError(error) && error.isClientError) throw invalidField("csr", error.message);
    throw error;
  }
  const key = csr.keySpec;
  if (!((key.type === "ec" && key.bits === 256) || key.type === "ed25519")) {
    throw invalidField(
      "csr",
      `"csr" must have an EC P-256 or Ed25519 key, not ${key.type === "ec" ? `EC ${key.bits}-bit` : key.type.toUpperCase()}`,
    );
  }
  // An identity certificate names the device and nothing else, whatever the role allows.
  if (csr.altNames.length > 0) {
    throw invalidField(
      "csr",
      `"csr" must not request subject alternative names (found ${csr.altNames.length}); an identity certificate names only the device`,
    );
  }
  if (csr.commonName !== deviceName) {
    throw invalidField(
      "csr",
      `the CSR's common name ${JSON.stringify(csr.commonName)} must equal the device name "${deviceName}"`,
    );
  }
}

/**
 * Returns the PKI service of the configured mount. Throws `invalid_state`
 * when the mount is gone, which an operator fixes in `devices/config`.
 */
export function configuredPki(resolve: PkiResolver, config: DevicesConfig): PkiService {
  const pki = resolve(config.pkiMount);
  if (!pki) {
    throw new KeywardError(
      "invalid_state",
      `the device registry's PKI mount "${config.pkiMount}" is no longer mounted; update devices/config`,
    );
  }
  return pki;
}

/**
 * Signs `csrText` with the configured role for `deviceName` and returns the
 * certificate. The CSR must already have passed `checkIdentityCsr`. The
 * common name stays out of the subject alternative names: the certificate
 * identifies a device, not a host.
 */
export async function signIdentityCertificate(
  pki: PkiService,
  config: DevicesConfig,
  deviceName: string,
  csrText: string,
  now: Date,
): Promise<IssuedIdentity> {
  const issued = await pki.sign(
    config.pkiRole,
    {
      csr: csrText,
      common_name: deviceName,
      exclude_cn_from_sans: true,
      format: "pem",
      ...(config.identityTtlSeconds === undefined ? {} : { ttl: config.identityTtlSeconds }),
    },
    undefined,
    DEVICES_CERTIFICATE_OWNER,
  );
  const issuedAt = Math.floor(now.getTime() / 1000);
  const renewAfter = issuedAt + Math.floor(((issued.expiration - issuedAt) * 2) / 3);
  return {
    certificate: issued.certificate,
    caChain: issued.ca_chain,
    serialNumber: issued.serial_number,
    expiration: issued.expiration,
    renewAfter,
    record: {
      serial: normaliseSerialHex(issued.serial_number.replaceAll(":", "")),
      mount: config.pkiMount,
      expiration: new Date(issued.expiration * 1000).toISOString(),
    },
  };
}

/**
 * Revokes identity certificates in their PKI mounts, so CRLs and OCSP show
 * them. A certificate whose mount is gone, or that the mount no longer
 * stores, is skipped and logged: it can no longer authenticate anyway,
 * because authentication verifies it against that mount. Revoking an
 * already revoked certificate succeeds and keeps its first revocation time
 * and reason, so a failed enrolment can revoke the same certificates again
 * when it is retried.
 */
export async function revokeIdentityCertificates(
  resolve: PkiResolver,
  certificates: readonly IdentityCertificate[],
  reason: "superseded" | "cessationOfOperation" | undefined,
  logger: { warn(fields: object, message?: string): void },
): Promise<void> {
  for (const certificate of certificates) {
    const pki = resolve(certificate.mount);
    if (!pki) {
      logger.warn(
        { mount: certificate.mount, serial: certificate.serial },
        "identity certificate not revoked: its PKI mount is gone",
      );
      continue;
    }
    try {
      await pki.revocation.revoke(certificate.serial, reason);
    } catch (error) {
      if (!(isKeywardError(error) && error.code === "not_found")) throw error;
      logger.warn(
        { mount: certificate.mount, serial: certificate.serial },
        "identity certificate not revoked: the PKI mount no longer stores it",
      );
    }
  }
}
