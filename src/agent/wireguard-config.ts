import { isWireguardKey } from "./wireguard-keys.ts";

/** The value of the `PrivateKey` line in configurations the server renders, fixed by the device API. */
export const PRIVATE_KEY_PLACEHOLDER = "KEYWARD_PRIVATE_KEY_PLACEHOLDER";

/** Configuration keys whose value is a WireGuard key, in lower case because wg(8) reads key names case-insensitively. */
const KEY_LINES = new Set(["privatekey", "publickey", "presharedkey"]);

/** A rendered configuration the agent will not install. The message never contains a key. */
export class WireguardConfigError extends Error {
  override readonly name = "WireguardConfigError";
}

/** Splits a configuration line into its key and value, without any `#` comment. */
function keyAndValue(line: string): { key: string; value: string } | undefined {
  const text = line.split("#")[0] as string;
  const equals = text.indexOf("=");
  if (equals < 0) return undefined;
  return { key: text.slice(0, equals).trim().toLowerCase(), value: text.slice(equals + 1).trim() };
}

/**
 * Checks a configuration before it is installed, whether or not a check
 * command is configured: no placeholder is left, and every PrivateKey,
 * PublicKey and PresharedKey line contains a canonical 44-character base64 key
 * of 32 bytes. Throws `WireguardConfigError` naming the line number.
 */
export function validateWireguardConfig(text: string): void {
  const lines = text.split("\n");
  for (const [index, line] of lines.entries()) {
    const number = index + 1;
    if (line.includes(PRIVATE_KEY_PLACEHOLDER)) {
      throw new WireguardConfigError(`line ${number} still contains the private key placeholder`);
    }
    const entry = keyAndValue(line);
    if (entry === undefined || !KEY_LINES.has(entry.key)) continue;
    if (!isWireguardKey(entry.value)) {
      throw new WireguardConfigError(
        `line ${number}: the ${entry.key} value is not a WireGuard key (44 characters of canonical base64, 32 bytes)`,
      );
    }
  }
}

/**
 * Replaces the `PrivateKey = KEYWARD_PRIVATE_KEY_PLACEHOLDER` line of a
 * rendered configuration with `privateKey`, then validates the result.
 * Exactly one placeholder line must be present.
 */
export function insertPrivateKey(rendered: string, privateKey: string): string {
  if (!isWireguardKey(privateKey)) {
    throw new WireguardConfigError("the private key is not a WireGuard key");
  }
  let replaced = 0;
  const lines = rendered.split("\n").map((line) => {
    const entry = keyAndValue(line);
    if (entry?.key === "privatekey" && entry.value === PRIVATE_KEY_PLACEHOLDER) {
      replaced += 1;
      return `PrivateKey = ${privateKey}`;
    }
    return line;
  });
  if (replaced !== 1) {
    throw new WireguardConfigError(
      `the rendered configuration has ${replaced} "PrivateKey = ${PRIVATE_KEY_PLACEHOLDER}" lines; expected exactly one`,
    );
  }
  const text = lines.join("\n");
  validateWireguardConfig(text);
  return text;
}
