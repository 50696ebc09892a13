import { createHash } from "node:crypto";
import { parseDuration } from "../../auth/duration.ts";
import { KeywardError } from "../../errors.ts";
import { CERTIFICATE_TYPES, type CertificateType, VALID_FOREVER } from "./certificate.ts";
import { checkKeyId } from "./names.ts";
import { criticalOptionsFor, extensionsFor } from "./options.ts";
import { notAllowed, validPrincipals } from "./principals.ts";
import type { SshPublicKey } from "./public-keys.ts";
import { DEFAULT_KEY_ID_FORMAT, effectiveTtls, keyLengthRule } from "./roles.ts";
import { renderTemplate } from "./templates.ts";
import type { RequesterIdentity, SignRequest, SshRole } from "./types.ts";

/**
 * The policy steps of signing: which certificate a request may get under a
 * role. Each step checks one part of the request against the role and
 * throws a 4xx `KeywardError` naming the request field at fault.
 */

/** Minimum RSA key size Keyward certifies, in bits, whatever the role allows. */
export const MIN_RSA_KEY_BITS = 2048;

/** The certificate fields that the role and request decide. The CA adds nonce, serial and signature. */
export interface CertificatePlan {
  type: CertificateType;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Record<string, string>;
  extensions: Record<string, string>;
}

export interface PlanInput {
  roleName: string;
  role: SshRole;
  key: SshPublicKey;
  request: Omit<SignRequest, "publicKey">;
  identity: RequesterIdentity;
  now: Date;
}

/** Applies every policy step and returns the certificate to sign. */
export function planCertificate(input: PlanInput): CertificatePlan {
  const type = certificateType(input.role, input.request.certType);
  checkKeyAllowed(input.role, input.key);
  const principals = validPrincipals(
    input.role,
    type,
    input.request.validPrincipals,
    input.identity,
  );
  const criticalOptions = criticalOptionsFor(input.role, type, input.request.criticalOptions);
  const extensions = extensionsFor(input.role, type, input.request.extensions, input.identity);
  const { validAfter, validBefore } = validity(input.role, input.request.ttl, input.now);
  const keyId = keyIdFor(input);
  return { type, keyId, principals, validAfter, validBefore, criticalOptions, extensions };
}

function certificateType(role: SshRole, requested: string | undefined): CertificateType {
  const type = requested ?? "user";
  if (!(CERTIFICATE_TYPES as readonly string[]).includes(type)) {
    throw new KeywardError("invalid_field", '"cert_type" must be "user" or "host"', {
      field: "cert_type",
    });
  }
  if (type === "user" && !role.allowUserCertificates) {
    throw new KeywardError("name_not_allowed", "the role does not allow user certificates", {
      field: "cert_type",
    });
  }
  if (type === "host" && !role.allowHostCertificates) {
    throw new KeywardError("name_not_allowed", "the role does not allow host certificates", {
      field: "cert_type",
    });
  }
  return type as CertificateType;
}

/** Checks the key's type and size against Keyward's floor and the role's `allowed_user_key_lengths`. */
export function checkKeyAllowed(role: SshRole, key: SshPublicKey, field = "public_key"): void {
  if (key.algorithm === "ssh-rsa" && key.bits < MIN_RSA_KEY_BITS) {
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" is an RSA key of ${key.bits} bits; at least ${MIN_RSA_KEY_BITS} are required`,
      { field },
    );
  }
  if (Object.keys(role.allowedUserKeyLengths).length === 0) return;
  const rule = keyLengthRule(role, key.algorithm);
  if (rule === undefined) {
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}": the role does not allow ${key.algorithm} keys`,
      { field },
    );
  }
  const allowed = Array.isArray(rule) ? rule.includes(key.bits) : key.bits >= rule;
  if (!allowed) {
    const wanted = Array.isArray(rule) ? `one of ${rule.join(", ")} bits` : `at least ${rule} bits`;
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" is a ${key.algorithm} key of ${key.bits} bits; the role requires ${wanted}`,
      { field },
    );
  }
}

/** Validity in Unix seconds: from `now - not_before_duration` for the TTL, capped by the role's `max_ttl`. */
function validity(
  role: SshRole,
  requestedTtl: number | string | undefined,
  now: Date,
): { validAfter: bigint; validBefore: bigint } {
  const { ttl: defaultTtl, maxTtl } = effectiveTtls(role);
  // 0 in any form ("0", "0s", 0) requests the default, as an absent ttl does.
  const requested =
    requestedTtl === undefined || requestedTtl === "" ? 0 : parseDuration(requestedTtl, "ttl");
  const ttl = requested > 0 ? requested : defaultTtl;
  if (ttl > maxTtl) {
    throw new KeywardError(
      "ttl_too_long",
      `"ttl" of ${ttl} seconds is longer than the role's maximum of ${maxTtl} seconds`,
      { field: "ttl" },
    );
  }
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  const validAfter = seconds - BigInt(role.notBeforeDuration);
  const validBefore = seconds + BigInt(ttl);
  return {
    validAfter: validAfter < 0n ? 0n : validAfter,
    validBefore: validBefore >= VALID_FOREVER ? VALID_FOREVER : validBefore,
  };
}

function keyIdFor(input: PlanInput): string {
  const { role, request, key, identity, roleName } = input;
  let keyId: string | undefined;
  if (request.keyId !== undefined && request.keyId !== "") {
    if (!role.allowUserKeyIds) {
      throw notAllowed('the role does not allow setting "key_id" (allow_user_key_ids)', "key_id");
    }
    keyId = request.keyId;
  } else {
    const variables = {
      token_display_name: identity.displayName || "anonymous",
      role_name: roleName,
      public_key_hash: createHash("sha256").update(key.blob).digest("hex"),
    };
    keyId = renderTemplate(role.keyIdFormat || DEFAULT_KEY_ID_FORMAT, variables);
    if (keyId === undefined) {
      throw new KeywardError(
        "invalid_field",
        'the role\'s "key_id_format" uses an unknown variable; use {{token_display_name}}, {{role_name}} or {{public_key_hash}}',
        { field: "key_id_format" },
      );
    }
  }
  checkKeyId(keyId, "key_id");
  return keyId;
}
