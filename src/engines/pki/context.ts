import type { PkiConfig } from "./config.ts";
import type { CertificateInventory } from "./inventory.ts";
import type { IssuerRegistry } from "./issuers.ts";
import { toPem } from "./pem.ts";
import type { PkiStore } from "./store.ts";
import type { MountTtls } from "./validity.ts";
import type * as x509 from "./x509.ts";

/** What the PKI engine's operations share within one mount. */
export interface PkiContext {
  mount: string;
  store: PkiStore;
  issuers: IssuerRegistry;
  config: PkiConfig;
  inventory: CertificateInventory;
  clock: () => Date;
  mountTtls: () => MountTtls;
}

export const OUTPUT_FORMATS = ["pem", "der", "pem_bundle"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Encodes a certificate as Vault returns it: PEM, or base64 DER for `der`. */
export function encodeCertificate(
  certificate: x509.X509Certificate | string,
  format: OutputFormat,
): string {
  const der =
    typeof certificate === "string" ? pemToDer(certificate) : Buffer.from(certificate.rawData);
  return format === "der" ? der.toString("base64") : toPem(der, "CERTIFICATE");
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** Seconds since the Unix epoch, as Vault's `expiration` fields carry them. */
export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
