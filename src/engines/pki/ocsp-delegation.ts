import { parseDuration } from "../../auth/duration.ts";
import { KeywardError } from "../../errors.ts";
import { buildCertificate, newSerialHex } from "./certificate.ts";
import { type PkiContext, unixSeconds } from "./context.ts";
import {
  colonSerial,
  generateKeyPair,
  importSigningKey,
  keySpec,
  normaliseSerialHex,
} from "./key-pairs.ts";
import { toPem } from "./pem.ts";
import type { RevocationSigner } from "./revocation/index.ts";
import { buildSubject, firstAttribute } from "./subject.ts";
import type { IssuerRecord, OcspResponderRecord } from "./types.ts";
import { computeValidity } from "./validity.ts";
import * as x509 from "./x509.ts";

/** id-kp-OCSPSigning (RFC 6960 section 4.2.2.2). */
const OCSP_SIGNING = "1.3.6.1.5.5.7.3.9";

/** Default lifetime of a responder certificate: 30 days, in seconds. Short, because ocsp-nocheck makes it unrevocable. */
const DEFAULT_RESPONDER_TTL_SECONDS = 30 * 24 * 3600;

/** Fields of `issuer/:ref/ocsp-responder`. */
export interface OcspResponderRequest {
  key_type?: string;
  key_bits?: number;
  ttl?: number | string;
}

/** A delegated responder ready to sign: its certificate and WebCrypto key. */
export interface LoadedResponder extends RevocationSigner {
  record: OcspResponderRecord;
}

function pathOf(issuerId: string): string {
  return `ocsp-responders/${issuerId}`;
}

/**
 * Delegated OCSP responders (RFC 6960 section 4.2.2.2), one per issuer at
 * `ocsp-responders/<issuer id>`. Each is a key pair Keyward generates and a
 * certificate the issuer signs with id-kp-OCSPSigning and
 * id-pkix-ocsp-nocheck. While an issuer has one that has not expired, the
 * responder signs the OCSP responses about the issuer's certificates, and
 * they carry its certificate. Otherwise the issuer signs them.
 */
export class OcspResponders {
  readonly #context: PkiContext;
  readonly #loaded = new Map<string, { pem: string; responder: Promise<LoadedResponder> }>();

  constructor(context: PkiContext) {
    this.#context = context;
  }

  async read(issuer: IssuerRecord): Promise<OcspResponderRecord | undefined> {
    return this.#context.store.get<OcspResponderRecord>(pathOf(issuer.id));
  }

  /** Creates (or replaces) an issuer's delegated responder, signed by the issuer. */
  async create(issuer: IssuerRecord, request: OcspResponderRequest): Promise<OcspResponderRecord> {
    const context = this.#context;
    const spec = keySpec(request.key_type ?? "ec", request.key_bits);
    const signer = await context.issuers.load(issuer);
    const validity = computeValidity({
      now: context.clock(),
      ttlSeconds:
        request.ttl === undefined
          ? DEFAULT_RESPONDER_TTL_SECONDS
          : parseDuration(request.ttl, "ttl"),
      mount: context.mountTtls(),
      notBeforeSeconds: 30,
      issuer: { notAfter: signer.certificate.notAfter, behavior: "truncate" },
    });
    const pair = await generateKeyPair(spec);
    const issuerName = firstAttribute(signer.subjectDer, "2.5.4.3") ?? issuer.id;
    const serialHex = newSerialHex();
    const der = await buildCertificate(
      {
        subject: buildSubject({ common_name: `${issuerName} OCSP responder` }),
        publicKey: pair.spki,
        serialHex,
        ...validity,
        keyUsage: x509.KeyUsageFlags.digitalSignature,
        extKeyUsageOids: [OCSP_SIGNING],
        altNames: [],
        policyOids: [],
        issuingCertificateUrls: [],
        ocspServers: [],
        crlDistributionPoints: [],
        ocspNoCheck: true,
      },
      signer,
    );
    const record: OcspResponderRecord = {
      issuerId: issuer.id,
      serialHex: normaliseSerialHex(serialHex),
      certificatePem: toPem(der, "CERTIFICATE"),
      keyType: spec.type,
      keyBits: spec.bits,
      pkcs8: pair.pkcs8.toString("base64"),
      notAfter: validity.notAfter.toISOString(),
    };
    await context.store.put(pathOf(issuer.id), record);
    return record;
  }

  async delete(issuer: IssuerRecord): Promise<void> {
    await this.#context.store.delete(pathOf(issuer.id));
  }

  /** Returns the responder that signs for `issuer` at `now`, or undefined when the issuer signs itself. */
  async signerFor(issuer: IssuerRecord, now: Date): Promise<LoadedResponder | undefined> {
    const record = await this.read(issuer);
    if (!record || Date.parse(record.notAfter) <= now.getTime()) return undefined;
    const cached = this.#loaded.get(issuer.id);
    if (cached && cached.pem === record.certificatePem) return cached.responder;
    const responder = (async () => ({
      record,
      certificate: new x509.X509Certificate(record.certificatePem),
      privateKey: await importSigningKey(Buffer.from(record.pkcs8, "base64"), {
        type: record.keyType,
        bits: record.keyBits,
      }),
    }))();
    this.#loaded.set(issuer.id, { pem: record.certificatePem, responder });
    return responder;
  }
}

/** The public fields of a responder record, as the API returns them; the private key stays sealed. */
export function responderInfo(record: OcspResponderRecord) {
  return {
    issuer_id: record.issuerId,
    certificate: record.certificatePem,
    serial_number: colonSerial(record.serialHex),
    key_type: record.keyType,
    expiration: unixSeconds(new Date(record.notAfter)),
  };
}

/** Throws `not_found` naming the issuer when it has no responder. */
export function requireResponder(
  record: OcspResponderRecord | undefined,
  issuer: IssuerRecord,
): OcspResponderRecord {
  if (!record) {
    throw new KeywardError(
      "not_found",
      `issuer "${issuer.name || issuer.id}" has no delegated OCSP responder`,
      { field: "issuer_ref" },
    );
  }
  return record;
}
