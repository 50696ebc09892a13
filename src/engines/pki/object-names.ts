import { KeywardError } from "../../errors.ts";
import { claimName, releaseName } from "../../util/name-claims.ts";
import type { PkiTransaction } from "./store.ts";

/** Issuer and key names: letters, digits, `-` and `_`, as Vault allows, and never `default`. */
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Throws `invalid_field` unless `name` is empty or a valid issuer or key name. */
export function validateObjectName(name: string, field: string): void {
  if (name === "") return;
  if (!NAME_PATTERN.test(name) || name === "default") {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be 1-128 letters, digits, "-" or "_", and not "default"`,
      { field },
    );
  }
}

/** The storage folders of the name claims and of the named records, for issuers and keys. */
export const NAMED = {
  issuer: { claims: "issuer-names", records: "issuers", field: "issuer_name", noun: "an issuer" },
  key: { claims: "key-names", records: "keys", field: "key_name", noun: "a key" },
} as const;

export type Named = (typeof NAMED)[keyof typeof NAMED];

/**
 * Claims `name` for the issuer or key `id` inside `tx` (see
 * `util/name-claims.ts`), and throws `already_exists` when another
 * existing record has it. An empty name claims nothing. Records named
 * before claims existed have none: the callers' check of the listing
 * before the transaction finds those, and such a name changes only
 * through a rename or a deletion.
 */
export async function claimObjectName(tx: PkiTransaction, named: Named, name: string, id: string) {
  if (name === "") return;
  const holder = await claimName(
    tx,
    `${named.claims}/${name}`,
    id,
    async (other) => (await tx.get(`${named.records}/${other}`)) !== undefined,
  );
  if (holder !== undefined) {
    throw new KeywardError("already_exists", `${named.noun} named "${name}" exists`, {
      field: named.field,
    });
  }
}

/** Deletes the claim of `name` inside `tx` when the issuer or key `id` has it. */
export async function releaseObjectName(
  tx: PkiTransaction,
  named: Named,
  name: string,
  id: string,
) {
  if (name === "") return;
  await releaseName(tx, `${named.claims}/${name}`, id);
}

/**
 * Throws `already_exists` when a record in `records`, other than `exceptId`,
 * has `name`. An empty name is never taken. Callers check the listing
 * before the transaction that claims the name, so that a record named
 * before claims existed is found too.
 */
export function rejectListedName(
  named: Named,
  name: string,
  records: readonly { id: string; name: string }[],
  exceptId?: string,
): void {
  if (name === "") return;
  if (records.some((record) => record.id !== exceptId && record.name === name)) {
    throw new KeywardError("already_exists", `${named.noun} named "${name}" exists`, {
      field: named.field,
    });
  }
}
