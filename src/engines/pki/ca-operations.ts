import { createPrivateKey } from "node:crypto";
import { isIP } from "node:net";
import { parseDuration } from "../../auth/duration.ts";
import { KeywardError } from "../../errors.ts";
import { newSerialHex, signCertificate } from "./certificate.ts";
import { encodeCertificate, type OutputFormat, type PkiContext, unixSeconds } from "./context.ts";
import { checkCsr } from "./csr.ts";
import { keyObjectSigner } from "./data-signer.ts";
import type { LoadedIssuer } from "./issuers.ts";
import {
  colonSerial,
  encodePrivateKey,
  generatePrivateKey,
  importSigningKey,
  type KeySpec,
  keySpec,
  type PrivateKeyFormat,
  publicKeyOf,
  serialHexOf,
  signingAlgorithm,
} from "./key-pairs.ts";
import { type AltName, splitList, toAsciiHostname } from "./names.ts";
import { toPem } from "./pem.ts";
import { buildSubject, type SubjectFields } from "./subject.ts";
import type { IssuerRecord } from "./types.ts";
import { computeValidity } from "./validity.ts";
import * as x509 from "./x509.ts";

/** Key usage of every CA certificate Keyward makes: sign certificates, CRLs and OCSP responses. */
const CA_KEY_USAGE =
  x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** Fields of `root/generate`, `intermediate/generate` and `root/sign-intermediate`, as Vault names them. */
export interface CaRequest extends SubjectFields {
  alt_names?: string | string[];
  ip_sans?: string | string[];
  uri_sans?: string | string[];
  ttl?: number | string;
  not_after?: string;
  key_type?: string;
  key_bits?: number;
  key_name?: string;
  issuer_name?: string;
  max_path_length?: number;
  permitted_dns_domains?: string | string[];
  excluded_dns_domains?: string | string[];
  format?: OutputFormat;
  private_key_format?: PrivateKeyFormat;
  not_before_duration?: number | string;
  csr?: string;
  use_csr_values?: boolean;
}

function caAltNames(request: CaRequest): AltName[] {
  const names: AltName[] = [];
  for (const name of splitList(request.alt_names)) {
    // An email address is checked by its domain part, and written as given.
    const ascii = toAsciiHostname(name.slice(name.lastIndexOf("@") + 1).toLowerCase());
    if (!ascii)
      throw new KeywardError(
        "invalid_field",
        `"alt_names" contains "${name}", which is not a hostname`,
        { field: "alt_names" },
      );
    names.push(name.includes("@") ? { type: "email", value: name } : { type: "dns", value: ascii });
  }
  for (const ip of splitList(request.ip_sans)) {
    if (isIP(ip) === 0) {
      throw new KeywardError(
        "invalid_field",
        `"ip_sans" contains "${ip}", which is not an IP address`,
        { field: "ip_sans" },
      );
    }
    names.push({ type: "ip", value: ip });
  }
  for (const uri of splitList(request.uri_sans)) names.push({ type: "url", value: uri });
  return names;
}

function domains(value: string | string[] | undefined): string[] {
  return splitList(value).map((domain) => toAsciiHostname(domain.toLowerCase()) ?? domain);
}

function requireCommonName(request: CaRequest): void {
  if (!request.common_name) {
    throw new KeywardError("missing_field", 'missing required field "common_name"', {
      field: "common_name",
    });
  }
}

/** Returns the private key fields of an exported CA, as Vault does only for type `exported`. */
function exportedKeyFields(
  pkcs8: Uint8Array,
  spec: KeySpec,
  request: CaRequest,
): Record<string, string> {
  return {
    private_key: encodePrivateKey(
      pkcs8,
      spec,
      request.private_key_format ?? "der",
      request.format === "der" ? "der" : "pem",
    ),
    private_key_type: spec.type,
  };
}

async function urlExtensions(context: PkiContext) {
  const urls = await context.config.urls();
  return {
    issuingCertificateUrls: urls.issuingCertificates,
    ocspServers: urls.ocspServers,
    crlDistributionPoints: urls.crlDistributionPoints,
  };
}

function checkExportType(type: string): boolean {
  if (type !== "internal" && type !== "exported") {
    throw new KeywardError(
      "invalid_field",
      `the type in the path must be "internal" or "exported", not "${type}"`,
      {
        field: "type",
      },
    );
  }
  return type === "exported";
}

/**
 * Generates a root CA: a new key pair and a self-signed certificate, stored
 * as a new issuer. The key is returned only for type `exported`. The first
 * issuer of a mount becomes its default; `root/rotate` uses the same
 * operation, so a new root is published before it is made the default.
 */
export async function generateRoot(context: PkiContext, type: string, request: CaRequest) {
  const exported = checkExportType(type);
  requireCommonName(request);
  const spec = keySpec(request.key_type, request.key_bits);
  const now = context.clock();
  const validity = computeValidity({
    now,
    ttlSeconds: request.ttl === undefined ? undefined : parseDuration(request.ttl, "ttl"),
    notAfter: request.not_after,
    mount: context.mountTtls(),
    notBeforeSeconds:
      request.not_before_duration === undefined
        ? 30
        : parseDuration(request.not_before_duration, "not_before_duration"),
  });
  const pkcs8 = await generatePrivateKey(spec);
  const selfSigner = keyObjectSigner(
    createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }),
    spec,
  );
  const maxPathLength = request.max_path_length ?? -1;
  const certificate = await signCertificate(
    {
      subject: buildSubject(request),
      publicKey: publicKeyOf(pkcs8),
      serialHex: newSerialHex(),
      ...validity,
      ca: {
        ...(maxPathLength >= 0 ? { maxPathLength } : {}),
        permittedDnsDomains: domains(request.permitted_dns_domains),
        excludedDnsDomains: domains(request.excluded_dns_domains),
      },
      keyUsage: CA_KEY_USAGE,
      extKeyUsageOids: [],
      altNames: caAltNames(request),
      policyOids: [],
      ...(await urlExtensions(context)),
    },
    { selfSigner, keySpec: spec },
  );
  const { key, issuer } = await context.issuers.addGeneratedRoot(pkcs8, spec, certificate, {
    keyName: request.key_name,
    issuerName: request.issuer_name,
    exported,
  });
  await context.inventory.add(certificate, issuer.id, "");
  const format = request.format ?? "pem";
  return {
    certificate: encodeCertificate(certificate, format),
    issuing_ca: encodeCertificate(certificate, format),
    serial_number: colonSerial(issuer.serialHex),
    expiration: unixSeconds(certificate.notAfter),
    issuer_id: issuer.id,
    issuer_name: issuer.name,
    key_id: key.id,
    key_name: key.name,
    ...(exported ? exportedKeyFields(pkcs8, spec, request) : {}),
  };
}

/** Generates an intermediate CA's key pair and returns a CSR for a parent CA to sign. */
export async function generateIntermediateCsr(
  context: PkiContext,
  type: string,
  request: CaRequest,
) {
  const exported = checkExportType(type);
  requireCommonName(request);
  const spec = keySpec(request.key_type, request.key_bits);
  const pkcs8 = await generatePrivateKey(spec);
  const privateKey = await importSigningKey(pkcs8, spec);
  const spki = publicKeyOf(pkcs8);
  const publicKey = await new x509.PublicKey(spki).export();
  const altNames = caAltNames(request);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: new x509.Name(buildSubject(request)),
    keys: { privateKey, publicKey } as CryptoKeyPairLike,
    signingAlgorithm: signingAlgorithm(spec),
    extensions: altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : [],
  });
  const key = await context.issuers.addKey(pkcs8, spec, { name: request.key_name, exported });
  return {
    csr:
      request.format === "der"
        ? Buffer.from(csr.rawData).toString("base64")
        : toPem(csr.rawData, "CERTIFICATE REQUEST"),
    key_id: key.id,
    key_name: key.name,
    key_type: spec.type,
    ...(exported ? exportedKeyFields(pkcs8, spec, request) : {}),
  };
}

type CryptoKeyPairLike = Parameters<
  typeof x509.Pkcs10CertificateRequestGenerator.create
>[0]["keys"];

/**
 * Signs an intermediate CA's CSR with `issuer` (`root/sign-intermediate`,
 * `issuer/:ref/sign-intermediate`). The subject comes from the request
 * unless `use_csr_values` is set. The path length is kept below the
 * issuer's own limit.
 */
export async function signIntermediate(
  context: PkiContext,
  issuer: IssuerRecord,
  request: CaRequest,
) {
  if (!request.csr)
    throw new KeywardError("missing_field", 'missing required field "csr"', { field: "csr" });
  const checked = await checkCsr(request.csr);
  if (!request.use_csr_values) requireCommonName(request);
  const loaded = await context.issuers.loadForIssuing(issuer);
  const maxPathLength = childPathLength(loaded, request.max_path_length ?? -1);
  const validity = computeValidity({
    now: context.clock(),
    ttlSeconds: request.ttl === undefined ? undefined : parseDuration(request.ttl, "ttl"),
    notAfter: request.not_after,
    mount: context.mountTtls(),
    notBeforeSeconds:
      request.not_before_duration === undefined
        ? 30
        : parseDuration(request.not_before_duration, "not_before_duration"),
    issuer: { notAfter: loaded.certificate.notAfter, behavior: issuer.leafNotAfterBehavior },
  });
  const certificate = await signCertificate(
    {
      subject: request.use_csr_values ? checked.subjectDer : buildSubject(request),
      publicKey: checked.publicKey,
      serialHex: newSerialHex(),
      ...validity,
      ca: {
        ...(maxPathLength >= 0 ? { maxPathLength } : {}),
        permittedDnsDomains: domains(request.permitted_dns_domains),
        excludedDnsDomains: domains(request.excluded_dns_domains),
      },
      keyUsage: CA_KEY_USAGE,
      extKeyUsageOids: [],
      altNames: request.use_csr_values ? checked.altNames : caAltNames(request),
      policyOids: [],
      ...(await urlExtensions(context)),
    },
    loaded,
  );
  await context.inventory.add(certificate, issuer.id, "");
  const format = request.format ?? "pem";
  const chain = await context.issuers.chain(issuer);
  return {
    certificate: encodeCertificate(certificate, format),
    issuing_ca: encodeCertificate(issuer.certificatePem, format),
    ca_chain: chain.map((pem) => encodeCertificate(pem, format)),
    serial_number: colonSerial(serialHexOf(certificate)),
    expiration: unixSeconds(certificate.notAfter),
  };
}

/**
 * Returns the path length to write into a child CA: the requested one
 * (-1 for none), capped one below the issuer's own limit. An issuer with a
 * path length of 0 cannot sign CAs.
 */
function childPathLength(issuer: LoadedIssuer, requested: number): number {
  const parent = issuer.certificate.getExtension(x509.BasicConstraintsExtension)?.pathLength;
  if (parent === undefined) return requested;
  if (parent === 0) {
    throw new KeywardError(
      "invalid_state",
      "the issuer's path length is 0, so it cannot sign intermediate CAs",
      {
        field: "issuer_ref",
      },
    );
  }
  return requested < 0 || requested > parent - 1 ? parent - 1 : requested;
}
