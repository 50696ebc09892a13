import { invalidField } from "../errors.ts";

/** Maximum duration accepted anywhere in auth: 100 years, in seconds. */
export const MAX_DURATION_SECONDS = 100 * 365 * 86_400;

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

const DURATION_PART = /(\d+(?:\.\d+)?)([smhd])/g;

/**
 * Parses a duration as Vault's API accepts it: whole seconds (a number or a
 * string of digits) or a Go-style string such as `1h`, `90m` or `1h30m`,
 * with `d` for days. Fractions are allowed when the total is a whole number
 * of seconds (`1.5h`). Throws `invalid_field` naming `field` for anything
 * else, for negative values and for values above `MAX_DURATION_SECONDS`.
 *
 * NOTE: the transit engine has its own parser with the same grammar
 * (`engines/transit/encoding.ts`), which auth cannot import from an engine.
 */
export function parseDuration(value: number | string, field: string): number {
  const invalid = () =>
    invalidField(
      field,
      `"${field}" must be a whole number of seconds or a duration such as "1h" or "1h30m", at most 100 years`,
    );

  let seconds: number;
  if (typeof value === "number") {
    seconds = value;
  } else if (/^\d{1,15}$/.test(value)) {
    seconds = Number(value);
  } else {
    if (value.length === 0 || value.length > 64) throw invalid();
    seconds = 0;
    let consumed = 0;
    for (const match of value.matchAll(DURATION_PART)) {
      if (match.index !== consumed) throw invalid();
      seconds += Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number);
      consumed += match[0].length;
    }
    if (consumed !== value.length) throw invalid();
  }
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_DURATION_SECONDS) {
    throw invalid();
  }
  return seconds;
}

/** Parses an optional duration. An absent value stays `undefined`. */
export function parseOptionalDuration(
  value: number | string | undefined,
  field: string,
): number | undefined {
  return value === undefined ? undefined : parseDuration(value, field);
}
