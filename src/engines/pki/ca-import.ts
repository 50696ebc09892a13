import { KeywardError } from "../../errors.ts";
import {
  type BundleCertificate,
  checkBundleSize,
  readBundleCertificate,
  readBundleKey,
  withChains,
} from "./ca-bundle.ts";
import type { PkiContext } from "./context.ts";
import { readPemBlocks } from "./pem.ts";

/**
 * Imports CA certificates and private keys from a PEM bundle
 * (`intermediate/set-signed`, `config/ca`, `issuers/import/bundle`). Every
 * block is read and checked first, then all keys and issuers are stored in
 * one transaction, so a rejected bundle stores nothing (see
 * `IssuerRegistry.importBundleRecords`). Each key is stored once; each
 * certificate becomes an issuer, linked to its key when the key is stored.
 * An issuer's chain keeps the bundle's certificates that signed it, in
 * order. Certificates that are not CAs are rejected. With `keysAlone`, a
 * bundle of private keys without certificates is accepted, as Vault does.
 * With `requireKeyForFirst`, the first certificate must match a key in the
 * bundle or already stored.
 */
export async function importBundle(
  context: PkiContext,
  pem: string,
  field: string,
  options: { requireKeyForFirst: boolean; keysAlone: boolean },
) {
  const blocks = readPemBlocks(pem, field);
  checkBundleSize(blocks, field);
  const keys = blocks
    .filter((block) => block.label.endsWith("PRIVATE KEY"))
    .map((block) => readBundleKey(block, field));
  const read: BundleCertificate[] = blocks
    .filter((block) => block.label === "CERTIFICATE")
    .map((block, index) => readBundleCertificate(block, index, field));
  if (read.length === 0 && !(options.keysAlone && keys.length > 0)) {
    throw new KeywardError("invalid_certificate", `"${field}" contains no CERTIFICATE block`, {
      field,
    });
  }
  const certificates = await withChains(read);

  const stored = await context.issuers.importBundleRecords(
    keys,
    certificates,
    options.requireKeyForFirst ? field : undefined,
  );
  const mapping: Record<string, string> = {};
  for (const { record } of stored.issuers) mapping[record.id] = record.keyId;
  const ids = (created: boolean) =>
    stored.issuers.filter((issuer) => issuer.created === created).map(({ record }) => record.id);
  return {
    imported_issuers: ids(true),
    imported_keys: stored.keys.filter((key) => key.created).map(({ record }) => record.id),
    existing_issuers: [...new Set(ids(false))],
    mapping,
  };
}
