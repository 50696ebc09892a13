import { createHash } from "node:crypto";
import type { AcmeConfig } from "../config.ts";
import { ValidationFailure } from "./failure.ts";
import { createResolver } from "./resolver.ts";
import type { ValidationTarget } from "./validator.ts";

/**
 * Validates a dns-01 challenge (RFC 8555 section 8.4): a TXT record at
 * `_acme-challenge.<name>` must hold base64url(SHA-256(key authorization)).
 * The query goes to `dns_resolver` when set, otherwise to the system's
 * DNS servers.
 */
export async function validateDns01(
  target: ValidationTarget,
  config: AcmeConfig,
  timeoutMs: number,
): Promise<void> {
  const name = `_acme-challenge.${target.identifier.value}`;
  const expected = createHash("sha256").update(target.keyAuthorization).digest("base64url");
  let records: string[][];
  try {
    records = await createResolver(config, timeoutMs).resolveTxt(name);
  } catch (error) {
    throw new ValidationFailure("dns", `no TXT record found at ${name}`, error);
  }
  if (!records.some((chunks) => chunks.join("") === expected)) {
    throw new ValidationFailure(
      "unauthorized",
      `no TXT record at ${name} matches the key authorization`,
    );
  }
}
