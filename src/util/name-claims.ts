/**
 * Name claims: one storage record per name, written in the transaction
 * that writes the named record, so that a name stays unique across every
 * node sharing one storage.
 *
 * Two transactions that claim one name both read the claim and both write
 * it. Storage transactions are serialisable (PostgreSQL aborts one of them
 * with SQLSTATE 40001 and Keyward runs it again; SQLite runs them one at a
 * time), so the transaction that runs second finds the first one's claim.
 * An in-process lock cannot give this, because each node has its own.
 */

/** The reads and writes of one storage transaction that a claim needs. */
export interface ClaimTransaction {
  get<T>(path: string): Promise<T | undefined>;
  put(path: string, value: unknown): Promise<void>;
  delete(path: string): Promise<void>;
}

/** The record at a claim path: the id of the record that has the name. */
export interface NameClaim {
  id: string;
}

/**
 * Claims the name stored at `claimPath` for the record `id`, inside `tx`.
 * Returns the id of the record that owns the claim already and still
 * exists, or undefined once the claim belongs to `id`. `exists` reports,
 * reading inside `tx`, whether the record with a given id exists, so the
 * claim of a deleted record is taken over.
 */
export async function claimName(
  tx: ClaimTransaction,
  claimPath: string,
  id: string,
  exists: (holder: string) => Promise<boolean>,
): Promise<string | undefined> {
  const claim = await tx.get<NameClaim>(claimPath);
  if (claim?.id === id) return undefined;
  if (claim !== undefined && (await exists(claim.id))) return claim.id;
  await tx.put(claimPath, { id } satisfies NameClaim);
  return undefined;
}

/** Deletes the claim at `claimPath` inside `tx` when the record `id` owns it. */
export async function releaseName(
  tx: ClaimTransaction,
  claimPath: string,
  id: string,
): Promise<void> {
  const claim = await tx.get<NameClaim>(claimPath);
  if (claim?.id === id) await tx.delete(claimPath);
}
