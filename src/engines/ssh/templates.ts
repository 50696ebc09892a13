import type { RequesterIdentity } from "./types.ts";

/** A `{{name}}` variable in a template; the name may have spaces around it. */
const TEMPLATE_VARIABLE = /\{\{\s*([\w.-]+)\s*\}\}/g;

/**
 * Replaces `{{name}}` variables in a template. Returns `undefined` when the
 * template uses a variable that has no value, so the caller drops it, as
 * Vault does for templated principals.
 */
export function renderTemplate(
  template: string,
  variables: Readonly<Record<string, string | undefined>>,
): string | undefined {
  let missing = false;
  const rendered = template.replace(TEMPLATE_VARIABLE, (_match, name: string) => {
    const value = variables[name];
    if (value === undefined || value === "") missing = true;
    return value ?? "";
  });
  return missing ? undefined : rendered;
}

/**
 * Returns `template` with every variable replaced by "x", so the text
 * around the variables can be checked when a role is written, before any
 * caller's values are known.
 */
export function renderSample(template: string): string {
  return template.replace(TEMPLATE_VARIABLE, "x");
}

export function identityVariables(identity: RequesterIdentity): Record<string, string | undefined> {
  const variables: Record<string, string | undefined> = {
    token_display_name: identity.displayName,
    "identity.entity.name": identity.displayName,
  };
  for (const [name, value] of Object.entries(identity.metadata)) {
    variables[`identity.entity.metadata.${name}`] = value;
  }
  return variables;
}

export function renderAll(
  values: string[],
  templated: boolean,
  identity: RequesterIdentity,
): string[] {
  if (!templated) return values;
  const variables = identityVariables(identity);
  return values.flatMap((value) => {
    const rendered = renderTemplate(value, variables);
    return rendered === undefined ? [] : [rendered];
  });
}

/** Returns true when `text` contains an ASCII control character (0x00-0x1f or 0x7f). */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
