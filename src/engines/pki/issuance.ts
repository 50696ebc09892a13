import type { KeyObject } from "node:crypto";
import { parseDuration } from "../../auth/duration.ts";
import { KeywardError } from "../../errors.ts";
import { buildCertificate, type CertificateTemplate, newSerialHex } from "./certificate.ts";
import { encodeCertificate, type OutputFormat, type PkiContext, unixSeconds } from "./context.ts";
import { type CheckedCsr, checkCsr } from "./csr.ts";
import { certificateNames } from "./der.ts";
import {
  colonSerial,
  encodePrivateKey,
  generateKeyPair,
  type KeySpec,
  keySpec,
  normaliseSerialHex,
  type PrivateKeyFormat,
} from "./key-pairs.ts";
import { type AltName, checkNames, splitList } from "./names.ts";
import { toPem } from "./pem.ts";
import { keyUsageFlags, ROLE_DEFAULTS, type Role, roleExtKeyUsageOids } from "./roles.ts";
import { buildSubject, firstAttribute, formatName } from "./subject.ts";
import type { IssuerRecord } from "./types.ts";
import { computeValidity } from "./validity.ts";
import * as x509 from "./x509.ts";

/** Fields of `issue/:role`, `sign/:role` and `sign-verbatim`, as Vault names them. */
export interface IssueRequest {
  common_name?: string;
  alt_names?: string | string[];
  ip_sans?: string | string[];
  uri_sans?: string | string[];
  /** otherName SANs as `<oid>;UTF8:<value>`, allowed by the role's `allowed_other_sans`. */
  other_sans?: string | string[];
  ttl?: number | string;
  not_after?: string;
  format?: OutputFormat;
  private_key_format?: PrivateKeyFormat;
  exclude_cn_from_sans?: boolean;
  remove_roots_from_chain?: boolean;
  csr?: string;
  key_usage?: string | string[];
  ext_key_usage?: string | string[];
  ext_key_usage_oids?: string | string[];
}

const COMMON_NAME_OID = "2.5.4.3";

type IssueMode = { kind: "issue" } | { kind: "sign" } | { kind: "verbatim" };

/** Returns the role `sign-verbatim` applies: the named role, or one allowing any name, with the request's usages. */
function verbatimRole(request: IssueRequest, role: Role | undefined): Role {
  const base: Role = role
    ? { ...role }
    : { ...ROLE_DEFAULTS, key_type: "any", key_bits: 0, allow_any_name: true };
  if (request.key_usage !== undefined) base.key_usage = splitList(request.key_usage);
  if (request.ext_key_usage !== undefined) base.ext_key_usage = splitList(request.ext_key_usage);
  if (request.ext_key_usage_oids !== undefined)
    base.ext_key_usage_oids = splitList(request.ext_key_usage_oids);
  if (!role) {
    base.server_flag = false;
    base.client_flag = false;
  }
  return base;
}

/** Checks that a CSR's key matches the role's `key_type` and `key_bits`. Throws `unsupported_key_type`. */
export function checkRoleKey(role: Role, spec: KeySpec): void {
  if (role.key_type === "any") return;
  if (spec.type !== role.key_type) {
    throw new KeywardError(
      "unsupported_key_type",
      `the role requires a ${role.key_type} key, but the CSR has a ${spec.type} key`,
      {
        field: "csr",
      },
    );
  }
  const tooSmall =
    spec.type === "rsa"
      ? spec.bits < role.key_bits
      : spec.type === "ec" && spec.bits !== role.key_bits;
  if (tooSmall) {
    throw new KeywardError(
      "unsupported_key_type",
      `the role requires ${role.key_bits}-bit keys, but the CSR's key has ${spec.bits} bits`,
      {
        field: "csr",
      },
    );
  }
}

/**
 * Key usage for a leaf: the role's, without usages the key type cannot have
 * and without keyCertSign, which RFC 5280 section 4.2.1.3 allows only with
 * basic constraints cA true.
 */
function leafKeyUsage(role: Role, spec: KeySpec): number {
  let flags = keyUsageFlags(role.key_usage) & ~x509.KeyUsageFlags.keyCertSign;
  if (spec.type !== "rsa") flags &= ~x509.KeyUsageFlags.keyEncipherment;
  if (spec.type === "ed25519") flags &= ~x509.KeyUsageFlags.keyAgreement;
  return flags;
}

/**
 * Issues a leaf certificate under a role. `issue` generates the key pair
 * and returns its private key once. `sign` takes the public key and names
 * from a CSR and checks the names against the role. `verbatim` copies the
 * CSR's subject and names unchecked, so its route requires sudo.
 */
export async function issueCertificate(
  context: PkiContext,
  options: {
    role: Role | undefined;
    roleName: string;
    issuerRef?: string;
    request: IssueRequest;
    mode: IssueMode;
    /** The service that tracks the certificate, stored in its record (see `CertificateRecord.owner`). */
    owner?: string;
  },
) {
  const { request, mode } = options;
  const role = mode.kind === "verbatim" ? verbatimRole(request, options.role) : options.role;
  if (!role)
    throw new KeywardError("not_found", `role "${options.roleName}" not found`, { field: "role" });

  // Step 1: the key: generated here, or taken from a verified CSR.
  let csr: CheckedCsr | undefined;
  let generated: KeyObject | undefined;
  let spec: KeySpec;
  let publicKey: Uint8Array;
  if (mode.kind === "issue") {
    spec = keySpec(role.key_type === "any" ? "rsa" : role.key_type, role.key_bits);
    const pair = await generateKeyPair(spec);
    generated = pair.privateKey;
    publicKey = pair.spki;
  } else {
    if (!request.csr)
      throw new KeywardError("missing_field", 'missing required field "csr"', { field: "csr" });
    csr = await checkCsr(request.csr);
    checkRoleKey(role, csr.keySpec);
    spec = csr.keySpec;
    publicKey = csr.publicKey;
  }

  // Step 2: the names, checked against the role.
  let subject: x509.JsonName | Uint8Array;
  let altNames: AltName[];
  if (mode.kind === "verbatim" && csr) {
    subject = csr.subjectDer;
    altNames = csr.altNames;
  } else {
    const useCsr = csr !== undefined;
    const commonName =
      request.common_name || (useCsr && role.use_csr_common_name ? csr!.commonName : "");
    if (commonName === "" && role.require_cn) {
      throw new KeywardError("missing_field", 'missing required field "common_name"', {
        field: "common_name",
      });
    }
    const csrNames = useCsr && role.use_csr_sans ? csr!.altNames : [];
    altNames = checkNames(role, {
      commonName,
      altNames: [
        ...splitList(request.alt_names),
        ...csrNames.filter((n) => n.type === "dns" || n.type === "email").map((n) => n.value),
      ],
      ipSans: [
        ...splitList(request.ip_sans),
        ...csrNames.filter((n) => n.type === "ip").map((n) => n.value),
      ],
      uriSans: [
        ...splitList(request.uri_sans),
        ...csrNames.filter((n) => n.type === "url").map((n) => n.value),
      ],
      otherSans: splitList(request.other_sans),
      excludeCnFromSans: request.exclude_cn_from_sans ?? false,
    });
    subject = buildSubject({ ...role, common_name: commonName });
  }

  // Step 3: the issuer and the validity period.
  const issuerRecord = await context.issuers.resolve(
    options.issuerRef ?? role.issuer_ref,
    "issuer_ref",
  );
  const issuer = await context.issuers.loadForIssuing(issuerRecord);
  const validity = computeValidity({
    now: context.clock(),
    ttlSeconds: request.ttl === undefined ? undefined : parseDuration(request.ttl, "ttl"),
    notAfter: request.not_after,
    roleTtlSeconds: role.ttl,
    roleMaxTtlSeconds: role.max_ttl,
    mount: context.mountTtls(),
    notBeforeSeconds: role.not_before_duration,
    issuer: { notAfter: issuer.certificate.notAfter, behavior: issuerRecord.leafNotAfterBehavior },
  });

  // Step 4: sign and store.
  const urls = await context.config.urls();
  const template: CertificateTemplate = {
    subject,
    publicKey,
    serialHex: newSerialHex(),
    ...validity,
    keyUsage: leafKeyUsage(role, spec),
    extKeyUsageOids: roleExtKeyUsageOids(role),
    altNames,
    policyOids: role.policy_identifiers,
    leafBasicConstraints: role.basic_constraints_valid_for_non_ca,
    issuingCertificateUrls: urls.issuingCertificates,
    ocspServers: urls.ocspServers,
    crlDistributionPoints: urls.crlDistributionPoints,
  };
  const der = await buildCertificate(template, issuer);
  const certificatePem = toPem(der, "CERTIFICATE");
  if (!role.no_store) {
    await context.inventory.addIssued({
      serialHex: normaliseSerialHex(template.serialHex),
      issuerId: issuerRecord.id,
      certificatePem,
      subject:
        subject instanceof Uint8Array ? new x509.Name(subject).toString() : formatName(subject),
      commonName: commonNameOf(subject),
      sans: altNames.map((name) => `${name.type}:${name.value}`),
      notBefore: template.notBefore.toISOString(),
      notAfter: template.notAfter.toISOString(),
      role: options.roleName,
      ...(options.owner === undefined ? {} : { owner: options.owner }),
    });
  }

  return respond(context, {
    certificatePem,
    serialHex: template.serialHex,
    notAfter: template.notAfter,
    issuerRecord,
    request,
    privateKey: generated,
    spec,
  });
}

function commonNameOf(subject: x509.JsonName | Uint8Array): string {
  if (subject instanceof Uint8Array) return firstAttribute(subject, COMMON_NAME_OID) ?? "";
  return subject.find((rdn) => rdn.CN !== undefined)?.CN?.[0] ?? "";
}

async function respond(
  context: PkiContext,
  options: {
    certificatePem: string;
    serialHex: string;
    notAfter: Date;
    issuerRecord: IssuerRecord;
    request: IssueRequest;
    privateKey: KeyObject | undefined;
    spec: KeySpec;
  },
) {
  const { certificatePem, issuerRecord, request, spec } = options;
  const format = request.format ?? "pem";
  let chain = await context.issuers.chain(issuerRecord);
  if (request.remove_roots_from_chain) chain = chain.filter((pem) => !isSelfIssued(pem));
  const privateKey = options.privateKey
    ? encodePrivateKey(
        options.privateKey,
        spec,
        request.private_key_format ?? "der",
        format === "der" ? "der" : "pem",
      )
    : undefined;
  let certificateText = encodeCertificate(certificatePem, format);
  if (format === "pem_bundle") {
    certificateText = [
      privateKey,
      certificateText,
      encodeCertificate(issuerRecord.certificatePem, "pem"),
    ]
      .filter((part) => part !== undefined)
      .map((part) => part!.trim())
      .join("\n");
  }
  return {
    certificate: certificateText,
    issuing_ca: encodeCertificate(issuerRecord.certificatePem, format),
    ca_chain: chain.map((pem) => encodeCertificate(pem, format)),
    serial_number: colonSerial(normaliseSerialHex(options.serialHex)),
    expiration: unixSeconds(options.notAfter),
    ...(privateKey !== undefined ? { private_key: privateKey, private_key_type: spec.type } : {}),
  };
}

function isSelfIssued(pem: string): boolean {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const names = certificateNames(der);
  return Buffer.from(names.issuer).equals(Buffer.from(names.subject));
}
