import { createPublicKey } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import type { TransitService } from "../transit/service.ts";
import type { SignOptions } from "../transit/types.ts";
import type { PkiContext } from "./context.ts";
import { type DataSigner, signatureAlgorithmDer } from "./data-signer.ts";
import { certificateNames } from "./der.ts";
import { canonicalPublicKey } from "./key-checks.ts";
import { describePublicKey, type KeySpec } from "./key-pairs.ts";
import { parseCertificates } from "./pem.ts";
import type { TransitKeyRef } from "./types.ts";
import * as x509 from "./x509.ts";

/** Returns the transit engine mounted at a path, or undefined when none is. */
export type TransitResolver = (mount: string) => TransitService | undefined;

/** Fields of `issuers/import/transit`. */
export interface TransitImportRequest {
  certificate?: string;
  /** The transit mount that has the key; default `transit`. */
  transit_mount?: string;
  transit_key?: string;
  issuer_name?: string;
}

/** Transit's signing options for certificates: the hash, padding and encoding X.509 expects of each key type. */
function signOptions(spec: KeySpec, version: number): SignOptions {
  if (spec.type === "rsa") {
    return { hashAlgorithm: "sha2-256", signatureAlgorithm: "pkcs1v15", keyVersion: version };
  }
  if (spec.type === "ec") {
    const hashAlgorithm = spec.bits === 384 ? "sha2-384" : "sha2-256";
    return { hashAlgorithm, marshalingAlgorithm: "asn1", keyVersion: version };
  }
  return { keyVersion: version };
}

/** Returns the transit engine at `mount`; throws `not_found` naming `transit_mount` when there is none. */
export function requireTransit(
  resolver: TransitResolver | undefined,
  mount: string,
): TransitService {
  const transit = resolver?.(mount);
  if (!transit) {
    throw new KeywardError("not_found", `no transit engine is mounted at "${mount}"`, {
      field: "transit_mount",
    });
  }
  return transit;
}

/**
 * Returns a signer that signs with one version of a transit key, so the
 * CA's private key never leaves the transit engine. Transit's signature
 * (`vault:v<version>:<base64>`) carries the DER ECDSA-Sig-Value for ECDSA
 * keys, as X.509 requires.
 */
export function transitDataSigner(
  transit: TransitService,
  ref: TransitKeyRef,
  spec: KeySpec,
): DataSigner {
  const options = signOptions(spec, ref.version);
  return {
    algorithm: signatureAlgorithmDer(spec),
    sign: async (data) => {
      const input = Buffer.from(data).toString("base64");
      const outcome = await transit.sign(ref.name, { input }, options);
      const encoded = outcome.value.signature.split(":").at(-1) ?? "";
      return Buffer.from(encoded, "base64");
    },
  };
}

/**
 * Imports an external CA certificate whose private key is a transit key
 * of this server (`issuers/import/transit`, a Keyward extension). The
 * latest version of the key must contain the certificate's public key.
 * The issuer signs with that version from then on, even after the transit
 * key is rotated.
 */
export async function importTransitIssuer(
  context: PkiContext,
  resolver: TransitResolver | undefined,
  request: TransitImportRequest,
) {
  if (!request.certificate) {
    throw new KeywardError("missing_field", 'missing required field "certificate"', {
      field: "certificate",
    });
  }
  if (!request.transit_key) {
    throw new KeywardError("missing_field", 'missing required field "transit_key"', {
      field: "transit_key",
    });
  }
  const [certificate] = parseCertificates(request.certificate, "certificate");
  if (!certificate?.getExtension(x509.BasicConstraintsExtension)?.ca) {
    throw new KeywardError("invalid_certificate", '"certificate" is not a CA certificate', {
      field: "certificate",
    });
  }
  const mount = request.transit_mount ?? "transit";
  const transit = requireTransit(resolver, mount);
  const info = await transit.readKey(request.transit_key);
  const version = info.latestVersion;
  const entry = info.keys[String(version)];
  const publicKeyPem = typeof entry === "object" ? entry.public_key : undefined;
  if (!info.supportsSigning || publicKeyPem === undefined) {
    throw new KeywardError(
      "invalid_request",
      `transit key "${request.transit_key}" cannot sign; use an ecdsa-p256, ecdsa-p384, rsa or ed25519 key`,
      { field: "transit_key" },
    );
  }
  const publicKey = createPublicKey(publicKeyPem);
  // Throws for key types certificates here cannot use, such as ecdsa-p521.
  describePublicKey(publicKey, "transit_key");
  const spki = publicKey.export({ format: "der", type: "spki" });
  const certificateSpki = certificateNames(new Uint8Array(certificate.rawData)).spki;
  // Canonical forms, so a certificate with the compressed form of the key's point matches.
  let matches: boolean;
  try {
    matches = canonicalPublicKey(spki) === canonicalPublicKey(certificateSpki);
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      'the public key in "certificate" cannot be used',
      {
        field: "certificate",
        cause: error,
      },
    );
  }
  if (!matches) {
    throw new KeywardError(
      "invalid_request",
      `version ${version} of transit key "${request.transit_key}" does not match the certificate's public key`,
      { field: "transit_key" },
    );
  }
  const { issuer, created } = await context.issuers.addIssuer(certificate, {
    name: request.issuer_name,
    transitKey: { mount, name: request.transit_key, version },
  });
  return {
    issuer_id: issuer.id,
    issuer_name: issuer.name,
    created,
    transit_mount: mount,
    transit_key: request.transit_key,
    transit_key_version: version,
  };
}
