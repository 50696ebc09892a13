import type { PkiContext } from "./context.ts";
import { putRevocation } from "./inventory.ts";
import type { CertificateRecord, IssuerRecord, RevokedRecord } from "./types.ts";

/** The outcome of revoking an issuer. */
export interface IssuerRevocation {
  issuer: IssuerRecord;
  /** The issuer of this mount whose CRL now lists the revoked issuer's certificate, if any. */
  parent: IssuerRecord | undefined;
  /** False when the issuer was already revoked, so nothing changed. */
  changed: boolean;
}

/**
 * Revokes an issuer, as Vault's `issuer/:ref/revoke` does: the issuer
 * stops issuing certificates, and when the issuer that signed its
 * certificate is in this mount, that certificate joins the parent's
 * revocation entries (and so its CRL and OCSP responses). The revoked issuer
 * still signs its own CRLs and OCSP responses, so certificates it issued
 * can still be checked. The issuer record, the revocation entry and the
 * inventory record change in one transaction. The caller rebuilds the
 * parent's CRL.
 */
export async function revokeIssuer(context: PkiContext, ref: string): Promise<IssuerRevocation> {
  const { issuers, store, clock } = context;
  const resolved = await issuers.resolve(ref, "issuer_ref");
  return store.withLock(`issuers/${resolved.id}`, async () => {
    const current = (await store.get<IssuerRecord>(`issuers/${resolved.id}`)) ?? resolved;
    const parent = await issuers.parentOf(current);
    if (current.revokedAt !== undefined) return { issuer: current, parent, changed: false };

    const revokedAt = new Date(Math.floor(clock().getTime() / 1000) * 1000).toISOString();
    const updated: IssuerRecord = { ...current, revokedAt };
    await store.transaction(async (tx) => {
      await tx.put(`issuers/${current.id}`, updated);
      if (!parent) return;
      const entry: RevokedRecord = {
        serialHex: current.serialHex,
        issuerId: parent.id,
        revokedAt,
        notAfter: current.notAfter,
      };
      await putRevocation(tx, entry);
      const stored = await tx.get<CertificateRecord>(`certs/${current.serialHex}`);
      if (stored && stored.revokedAt === undefined) {
        await tx.put(`certs/${current.serialHex}`, { ...stored, revokedAt });
      }
    });
    return { issuer: updated, parent, changed: true };
  });
}
