import { indexTime, issuerIndexSegment } from "./certificate-index.ts";
import type { PkiContext } from "./context.ts";
import { unrevokedEntries } from "./index-walk.ts";
import type { Role } from "./roles.ts";
import type { IssuerRecord, IssuerRotationRecord, RotationPhase } from "./types.ts";

/** A rotation's state as `GET issuers/rotate` returns it. */
export interface RotationStatus {
  phase: RotationPhase;
  oldIssuerId: string;
  newIssuerId: string;
  defaultIssuerId: string;
  preparedAt?: string;
  switchedAt?: string;
  retiredAt?: string;
  /**
   * Stored certificates of the old issuer that have neither expired nor
   * been revoked, the issuer's own certificate excepted: what is left to
   * re-issue. Certificates from roles with `no_store` are not counted.
   */
  oldIssuerCertificates: number;
  /** The same count for the new issuer. */
  newIssuerCertificates: number;
  /** Roles whose `issuer_ref` names the old issuer, so they do not follow the switch. */
  rolesUsingOldIssuer: string[];
}

export function phaseOf(record: IssuerRotationRecord | undefined): RotationPhase {
  return record?.phase ?? "none";
}

/** Builds the status of the rotation stored as `record`, counting the issuers' certificates. */
export async function readRotationStatus(
  context: PkiContext,
  record: IssuerRotationRecord | undefined,
): Promise<RotationStatus> {
  const config = await context.issuers.config();
  const oldIssuerId = record?.oldIssuerId ?? "";
  const newIssuerId = record?.newIssuerId ?? "";
  const counts = await liveCertificates(context, [oldIssuerId, newIssuerId]);
  return {
    phase: phaseOf(record),
    oldIssuerId,
    newIssuerId,
    defaultIssuerId: config.defaultIssuerId,
    ...(record?.preparedAt ? { preparedAt: record.preparedAt } : {}),
    ...(record?.switchedAt ? { switchedAt: record.switchedAt } : {}),
    ...(record?.retiredAt ? { retiredAt: record.retiredAt } : {}),
    oldIssuerCertificates: counts.get(oldIssuerId) ?? 0,
    newIssuerCertificates: counts.get(newIssuerId) ?? 0,
    rolesUsingOldIssuer: oldIssuerId ? await rolesUsing(context, oldIssuerId) : [],
  };
}

/**
 * Counts each issuer's stored certificates that are unexpired and
 * unrevoked, without the issuer's own certificate. It walks the keys of the
 * expiry index from now on, page by page, and reads no certificate record.
 */
async function liveCertificates(
  context: PkiContext,
  issuerIds: string[],
): Promise<Map<string, number>> {
  // The issuer segment of index keys, mapped to the issuer's id and its own serial.
  const issuers = new Map<string, { id: string; ownSerial: string }>();
  for (const id of issuerIds.filter((candidate) => candidate !== "")) {
    const issuer = await context.store.get<IssuerRecord>(`issuers/${id}`);
    issuers.set(issuerIndexSegment(id), { id, ownSerial: issuer?.serialHex ?? "" });
  }
  const counts = new Map<string, number>();
  if (issuers.size === 0) return counts;
  await context.inventory.index.ready();
  const now = indexTime(context.clock());
  for await (const entry of unrevokedEntries(context.store, { after: now })) {
    const issuer = issuers.get(entry.issuer);
    // A certificate that expires exactly now is expired.
    if (issuer === undefined || entry.notAfter === now || entry.serialHex === issuer.ownSerial) {
      continue;
    }
    counts.set(issuer.id, (counts.get(issuer.id) ?? 0) + 1);
  }
  return counts;
}

async function rolesUsing(context: PkiContext, issuerId: string): Promise<string[]> {
  const issuer = await context.store.get<IssuerRecord>(`issuers/${issuerId}`);
  const names: string[] = [];
  for (const name of await context.store.list("roles")) {
    const role = await context.store.get<Role>(`roles/${name}`);
    const ref = role?.issuer_ref ?? "default";
    if (ref === issuerId || (issuer && issuer.name !== "" && ref === issuer.name)) {
      names.push(name);
    }
  }
  return names;
}
