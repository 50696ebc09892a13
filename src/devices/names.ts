import { invalidField } from "../errors.ts";

/** Device, group and shared secret names: one path segment, usable as a certificate common name. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Tag keys: letters, digits and `_ . : / -`, such as `site` or `example.com/role`. */
const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;

/** Maximum number of tags, groups or listed devices on one object. */
export const MAX_LIST_ENTRIES = 64;

/** Maximum length of a tag value, in characters. */
const MAX_TAG_VALUE = 256;

const NAME_RULE = "1-63 letters, digits, '_', '.' or '-', starting with a letter or digit";

/** Checks a device, group or shared secret name and returns it. Throws `invalid_field` naming `field`. */
export function validateName(name: string, field: string): string {
  if (!NAME.test(name)) throw invalidField(field, `"${field}" must be ${NAME_RULE}`);
  return name;
}

/** Checks a list of names and returns it sorted without duplicates. */
export function validateNameList(names: readonly string[], field: string): string[] {
  if (names.length > MAX_LIST_ENTRIES) {
    throw invalidField(field, `"${field}" has more than ${MAX_LIST_ENTRIES} entries`);
  }
  names.forEach((name, index) => {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw invalidField(`${field}[${index}]`, `each entry of "${field}" must be ${NAME_RULE}`);
    }
  });
  return [...new Set(names)].sort();
}

/** Checks a tag map and returns a copy with its keys in order. */
export function validateTags(tags: Readonly<Record<string, unknown>>): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > MAX_LIST_ENTRIES) {
    throw invalidField("tags", `"tags" has more than ${MAX_LIST_ENTRIES} entries`);
  }
  const checked: Record<string, string> = {};
  // Keys of an object are unique, so the order needs no equal case.
  entries.sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [key, value] of entries) {
    if (!TAG_KEY.test(key)) {
      throw invalidField(
        `tags.${key}`,
        "tag keys must be 1-128 letters, digits, '_', '.', ':', '/' or '-', starting with a letter or digit",
      );
    }
    if (typeof value !== "string" || value.length > MAX_TAG_VALUE) {
      throw invalidField(
        `tags.${key}`,
        `tag values must be strings of at most ${MAX_TAG_VALUE} characters`,
      );
    }
    // TAG_KEY rejects `__proto__` (a key must start with a letter or digit), so plain assignment is safe.
    checked[key] = value;
  }
  return checked;
}
