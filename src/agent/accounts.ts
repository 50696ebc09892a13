import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { invalidField } from "../errors.ts";

/** The largest user or group id: 2^32 - 2, because -1 (2^32 - 1) means "unchanged" to chown(2). */
const MAX_ID = 4_294_967_294;

/** User and group names as useradd and groupadd accept them by default. */
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;

type Database = "passwd" | "group";

/**
 * Looks an account name up with getent(1), which queries the system's name
 * service switch (local files, LDAP, systemd-userdb and so on). Systems
 * without getent fall back to reading /etc/passwd or /etc/group directly.
 */
function lookUpId(database: Database, name: string): number | undefined {
  const result = spawnSync("getent", [database, name], { encoding: "utf8" });
  let text: string | undefined;
  if (result.error === undefined) {
    // getent exits with 2 when the name is not found.
    if (result.status !== 0) return undefined;
    text = result.stdout;
  } else {
    text = readFileSync(`/etc/${database}`, "utf8");
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) {
      return Number(fields[2]);
    }
  }
  return undefined;
}

/**
 * Resolves a file owner or group from the config: a name, a numeric id as a
 * JSON number, or a numeric id as a string of digits. Throws `invalid_field`
 * naming `field` when the value is malformed or the name does not exist.
 */
export function resolveAccountId(value: unknown, database: Database, field: string): number {
  const kind = database === "passwd" ? "user" : "group";
  if (typeof value === "number" || (typeof value === "string" && /^\d{1,10}$/.test(value))) {
    const id = Number(value);
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
      throw invalidField(field, `"${field}" must be a ${kind} id between 0 and ${MAX_ID}`);
    }
    return id;
  }
  if (typeof value !== "string" || !ACCOUNT_NAME.test(value)) {
    throw invalidField(field, `"${field}" must be a ${kind} name or a numeric ${kind} id`);
  }
  const id = lookUpId(database, value);
  if (id === undefined) {
    throw invalidField(field, `"${field}": no ${kind} named "${value}" exists on this system`);
  }
  return id;
}
