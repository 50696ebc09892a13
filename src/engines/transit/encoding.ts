import { KeywardError } from "../../errors.ts";
import { isCanonicalBase64 } from "../../util/base64.ts";

/**
 * Standard base64 with padding (RFC 4648 section 4), as Go's
 * `base64.StdEncoding` accepts it. Vault decodes every base64 field with that
 * encoding, so input that Vault rejects is rejected here too.
 */
/**
 * Decodes a standard base64 string, throwing `invalid_base64` naming `field`
 * when the value is not canonical padded base64. An empty string decodes to
 * an empty buffer.
 */
export function decodeBase64(value: string, field: string): Buffer {
  if (!isCanonicalBase64(value)) {
    throw new KeywardError("invalid_base64", `"${field}" is not valid padded standard base64`, {
      field,
    });
  }
  return Buffer.from(value, "base64");
}

/** Decodes an optional base64 field; absent and empty values both give `undefined`. */
export function decodeOptionalBase64(value: string | undefined, field: string): Buffer | undefined {
  if (value === undefined || value === "") return undefined;
  return decodeBase64(value, field);
}

const DURATION_UNIT_SECONDS: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

const DURATION_PART = /(\d+(?:\.\d+)?)([smhd])/g;

/**
 * Parses a duration as Vault accepts it: a number of seconds (as a number or a
 * string of digits) or a Go-style duration string such as `24h`, `1h30m` or
 * `90s`, with `d` for days as Vault's parser allows. Sub-second units are not
 * accepted because every duration Keyward stores is in whole seconds.
 * Throws `invalid_field` naming `field` for anything else.
 */
export function parseDurationSeconds(value: number | string, field: string): number {
  const invalid = () =>
    new KeywardError(
      "invalid_field",
      `"${field}" must be a whole number of seconds or a duration such as "24h" or "1h30m"`,
      { field },
    );

  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid();
    return value;
  }
  if (/^\d{1,15}$/.test(value)) return Number(value);
  if (value.length === 0 || value.length > 64) throw invalid();

  let seconds = 0;
  let consumed = 0;
  for (const match of value.matchAll(DURATION_PART)) {
    if (match.index !== consumed) throw invalid();
    const amount = Number(match[1]);
    const unit = DURATION_UNIT_SECONDS[match[2] as string] as number;
    seconds += amount * unit;
    consumed += match[0].length;
  }
  if (consumed !== value.length || !Number.isSafeInteger(seconds)) throw invalid();
  return seconds;
}
