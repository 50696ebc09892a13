/**
 * Serialises `value` as JSON with the members of every object sorted by
 * name (UTF-16 code units) and no whitespace, so equal values give equal
 * text. Members whose value is undefined are left out, as JSON.stringify
 * does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let text = "[";
    for (let index = 0; index < value.length; index++) {
      if (index > 0) text += ",";
      text += canonicalJson(value[index] === undefined ? null : value[index]);
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  let text = "{";
  let first = true;
  for (const name of Object.keys(record).sort()) {
    const member = record[name];
    if (member === undefined) continue;
    if (!first) text += ",";
    first = false;
    text += `${JSON.stringify(name)}:${canonicalJson(member)}`;
  }
  return `${text}}`;
}
