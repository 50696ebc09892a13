import { splitList } from "./names.ts";
import type * as x509 from "./x509.ts";

/** Subject fields as Vault's CA and role endpoints name them; list fields as arrays or comma-separated strings. */
export interface SubjectFields {
  common_name?: string;
  ou?: string[] | string;
  organization?: string[] | string;
  country?: string[] | string;
  locality?: string[] | string;
  province?: string[] | string;
  street_address?: string[] | string;
  postal_code?: string[] | string;
  serial_number?: string;
}

/**
 * Builds a subject name in the attribute order Go's crypto/x509 writes, so
 * certificates look like Vault's: C, ST, L, street, postalCode, O, OU, CN,
 * serialNumber. Empty fields are left out.
 */
export function buildSubject(fields: SubjectFields): x509.JsonName {
  const name: x509.JsonName = [];
  const add = (type: string, values: string[]) => {
    for (const value of values) name.push({ [type]: [value] });
  };
  add("C", splitList(fields.country));
  add("ST", splitList(fields.province));
  add("L", splitList(fields.locality));
  add("2.5.4.9", splitList(fields.street_address));
  add("2.5.4.17", splitList(fields.postal_code));
  add("O", splitList(fields.organization));
  add("OU", splitList(fields.ou));
  if (fields.common_name) add("CN", [fields.common_name]);
  if (fields.serial_number) add("2.5.4.5", [fields.serial_number]);
  return name;
}
