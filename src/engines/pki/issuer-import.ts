import type { KeySpec } from "./key-pairs.ts";
import type { IssuerRecord, KeyRecord } from "./types.ts";
import type * as x509 from "./x509.ts";

/** A private key read from an import bundle and checked, with `canonicalPublicKey` of its public key. */
export interface ImportedKey {
  pkcs8: Uint8Array;
  spec: KeySpec;
  publicKey: string;
}

/** A CA certificate read from an import bundle and checked, with its chain within the bundle. */
export interface ImportedCertificate {
  certificate: x509.X509Certificate;
  pem: string;
  /** `canonicalPublicKey` of the certificate's public key. */
  publicKey: string;
  /** PEM certificates of the bundle above this one, nearest first. */
  chainPems: string[];
}

/** A record that an import stored (`created`) or found already stored. */
export interface ImportResult<T> {
  record: T;
  created: boolean;
}

/** The keys and issuers of one import, in bundle order. */
export interface BundleImport {
  keys: ImportResult<KeyRecord>[];
  issuers: ImportResult<IssuerRecord>[];
}

/** Mount state that `planBundleImport` reads, and the builders of its new records. */
export interface ImportState {
  /** Stored keys by `canonicalPublicKey`. The plan adds its new keys to this map. */
  keysByPublicKey: Map<string, KeyRecord>;
  issuers: readonly IssuerRecord[];
  newKey: (key: ImportedKey) => KeyRecord;
  newIssuer: (certificate: ImportedCertificate, key: KeyRecord | undefined) => IssuerRecord;
  /** Returns `canonicalPublicKey` of a stored issuer's certificate, and throws for a key it cannot read. */
  publicKeyOf: (issuer: IssuerRecord) => string;
}

/**
 * Plans the records one import bundle stores, without writing any. A key
 * or certificate already stored is not stored twice. Each certificate is
 * linked to the stored or imported key that matches its public key, and so
 * is every stored issuer without a key that a new key matches. Returns the
 * keys and issuers in bundle order, and the issuer records to write (new
 * ones and newly linked ones).
 */
export function planBundleImport(
  keys: readonly ImportedKey[],
  certificates: readonly ImportedCertificate[],
  state: ImportState,
): BundleImport & { issuerWrites: IssuerRecord[] } {
  const keyResults: ImportResult<KeyRecord>[] = [];
  const newKeys = new Map<string, KeyRecord>();
  for (const key of keys) {
    const existing = state.keysByPublicKey.get(key.publicKey);
    if (existing) {
      keyResults.push({ record: existing, created: false });
      continue;
    }
    const record = state.newKey(key);
    state.keysByPublicKey.set(key.publicKey, record);
    newKeys.set(key.publicKey, record);
    keyResults.push({ record, created: true });
  }

  const byPem = new Map(state.issuers.map((issuer) => [issuer.certificatePem, issuer]));
  const writes = new Map<string, IssuerRecord>();
  const issuerResults: ImportResult<IssuerRecord>[] = [];
  for (const imported of certificates) {
    const key = state.keysByPublicKey.get(imported.publicKey);
    const existing = byPem.get(imported.pem);
    if (existing) {
      const record = existing.keyId === "" && key ? { ...existing, keyId: key.id } : existing;
      if (record !== existing) {
        byPem.set(imported.pem, record);
        writes.set(record.id, record);
      }
      issuerResults.push({ record, created: false });
      continue;
    }
    const record = state.newIssuer(imported, key);
    byPem.set(imported.pem, record);
    writes.set(record.id, record);
    issuerResults.push({ record, created: true });
  }

  // A key imported on its own links the stored issuers that lack one.
  for (const issuer of newKeys.size > 0 ? state.issuers : []) {
    if (issuer.keyId !== "" || writes.has(issuer.id)) continue;
    let publicKey: string;
    try {
      publicKey = state.publicKeyOf(issuer);
    } catch {
      // A stored certificate whose key cannot be read links to no key.
      continue;
    }
    const key = newKeys.get(publicKey);
    if (key) writes.set(issuer.id, { ...issuer, keyId: key.id });
  }
  return { keys: keyResults, issuers: issuerResults, issuerWrites: [...writes.values()] };
}
