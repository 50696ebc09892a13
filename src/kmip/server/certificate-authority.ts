/**
 * Keyward's own KMIP CA: an ECDSA P-256 root that signs the listener's
 * server certificate and the client credentials of the KMIP roles. It is
 * made at the first unseal that needs it and stored behind the barrier, at
 * `kmip/tls/ca`, so its key is readable only while Keyward is unsealed. The
 * certificates are built by the PKI engine's certificate builder.
 */
import { createHash, createPrivateKey, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import {
  buildCertificate,
  type CertificateTemplate,
  newSerialHex,
} from "../../engines/pki/certificate.ts";
import { keyObjectSigner } from "../../engines/pki/data-signer.ts";
import { certificateNames } from "../../engines/pki/der.ts";
import { generateKeyPair, type KeySpec } from "../../engines/pki/key-pairs.ts";
import type { AltName } from "../../engines/pki/names.ts";
import { toPem } from "../../engines/pki/pem.ts";
import { keyIdentifier, subjectPublicKeyBits } from "../../engines/pki/spki.ts";
import { buildSubject } from "../../engines/pki/subject.ts";
import * as x509 from "../../engines/pki/x509.ts";
import { KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import type { StorageReader } from "../../storage/storage.ts";

/** Storage prefix of the KMIP CA and the server certificates. */
export const KMIP_TLS_PREFIX = "kmip/tls/";
const CA_KEY = `${KMIP_TLS_PREFIX}ca`;
const SERVER_PREFIX = `${KMIP_TLS_PREFIX}servers/`;

const DAY_MS = 24 * 60 * 60 * 1000;
/** Lifetime of the KMIP CA. */
export const CA_LIFETIME_DAYS = 3650;
/**
 * The CA certificate is issued again, with the same key and subject, once it
 * has fewer days left than this.
 */
export const CA_RENEW_BEFORE_DAYS = 365;
/** Lifetime of a server certificate. */
export const SERVER_LIFETIME_DAYS = 90;
/** A server certificate is replaced once it has fewer days left than this. */
export const SERVER_RENEW_BEFORE_DAYS = 30;
/** Backdating of every certificate, for clients whose clocks run a little behind. */
const BACKDATE_MS = 60_000;

const EC_P256: KeySpec = { type: "ec", bits: 256 };
const ORGANIZATION = "Keyward KMIP";
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

/** Names every server certificate carries besides the listen host and the configured ones. */
export const LOCAL_SERVER_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** A certificate and its private key as stored: PEM, the key in PKCS#8. */
interface StoredKeyPair {
  certificate: string;
  privateKey: string;
}

interface StoredServerCertificate extends StoredKeyPair {
  /** The names the certificate was issued for, sorted; a change of configuration reissues it. */
  names: string[];
}

/** The fields of a leaf certificate that differ between the server and the client certificates. */
type LeafFields = Pick<
  CertificateTemplate,
  "subject" | "publicKey" | "serialHex" | "notAfter" | "keyUsage" | "extKeyUsageOids" | "altNames"
>;

/** The PEM certificate, key and CA bundle of the listener. */
export interface KmipTlsCredentials {
  cert: string;
  key: string;
  ca: string;
}

/** A server certificate with the time it should be replaced. */
export interface ServerCredentials {
  credentials: KmipTlsCredentials;
  /** When the certificate enters its renewal window. */
  renewAt: Date;
}

/** A client certificate the CA signed. */
export interface IssuedClientCertificate {
  /** PEM. */
  certificate: string;
  /** Lower-case hex, without leading zero bytes. */
  serialNumber: string;
  /** SHA-256 of the DER, lower-case hex; identifies the certificate in a TLS handshake. */
  fingerprint: string;
  notAfter: Date;
}

interface LoadedCa {
  pem: string;
  subjectDer: Uint8Array;
  keyIdHex: string;
  privateKey: KeyObject;
  notAfter: Date;
}

/** Returns the SHA-256 fingerprint of a DER certificate, lower-case hex. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

function decodePem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function encode(value: object): Uint8Array {
  return Buffer.from(JSON.stringify(value), "utf8");
}

async function read<T>(reader: StorageReader, key: string): Promise<T | undefined> {
  const bytes = await reader.get(key);
  return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString("utf8")) as T);
}

function altName(name: string): AltName {
  return isIP(name) === 0 ? { type: "dns", value: name } : { type: "ip", value: name };
}

/**
 * Returns the names of a server certificate: the listen host unless it is
 * a wildcard address, `localhost`, the loopback addresses and the
 * configured names, without repeats, sorted.
 */
export function serverCertificateNames(listenHost: string, extra: readonly string[]): string[] {
  const names = new Set<string>([...LOCAL_SERVER_NAMES, ...extra]);
  if (listenHost !== "" && listenHost !== "0.0.0.0" && listenHost !== "::") names.add(listenHost);
  return [...names].sort();
}

/**
 * The KMIP CA. The CA's key and certificate are cached in memory after the
 * first read, and `forget` drops them, which the server does at seal.
 */
export class KmipCertificateAuthority {
  readonly #barrier: Barrier;
  readonly #clock: () => Date;
  #ca: Promise<LoadedCa> | undefined;
  /** When the cached CA enters its renewal window, in epoch milliseconds. */
  #caRenewAt: number | undefined;

  constructor(barrier: Barrier, options: { clock?: () => Date } = {}) {
    this.#barrier = barrier;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Drops the cached CA key; the next use reads it again through the barrier. */
  forget(): void {
    this.#ca = undefined;
    this.#caRenewAt = undefined;
  }

  /** Returns the CA certificate, PEM, or undefined while no CA has been made. */
  async caCertificate(): Promise<string | undefined> {
    if ((await this.#barrier.get(CA_KEY)) === undefined) return undefined;
    return (await this.#loadCa()).pem;
  }

  /**
   * Returns the CA, making it when none is stored and renewing its
   * certificate inside the renewal window. The check and the write share one
   * serialisable transaction, so nodes that unseal at the same time agree on
   * one CA.
   */
  #loadCa(): Promise<LoadedCa> {
    // A cached CA that entered its renewal window is read, and renewed, again.
    if (this.#caRenewAt !== undefined && this.#clock().getTime() >= this.#caRenewAt) {
      this.#ca = undefined;
      this.#caRenewAt = undefined;
    }
    if (this.#ca === undefined) {
      const loading = this.#readOrCreateCa();
      this.#ca = loading;
      // A failed load is not kept, so the next use tries again.
      loading.then(
        (ca) => {
          if (this.#ca === loading) this.#caRenewAt = this.#renewAt(ca.notAfter);
        },
        () => {
          if (this.#ca === loading) this.#ca = undefined;
        },
      );
    }
    return this.#ca;
  }

  #renewAt(notAfter: Date): number {
    return notAfter.getTime() - CA_RENEW_BEFORE_DAYS * DAY_MS;
  }

  #needsRenewal(stored: StoredKeyPair): boolean {
    const notAfter = new x509.X509Certificate(decodePem(stored.certificate)).notAfter;
    return this.#clock().getTime() >= this.#renewAt(notAfter);
  }

  async #readOrCreateCa(): Promise<LoadedCa> {
    let stored = await read<StoredKeyPair>(this.#barrier, CA_KEY);
    if (stored === undefined || this.#needsRenewal(stored)) {
      stored = await this.#barrier.transaction(async (tx) => {
        const existing = await read<StoredKeyPair>(tx, CA_KEY);
        if (existing !== undefined && !this.#needsRenewal(existing)) return existing;
        const next =
          existing === undefined ? await this.#createCa() : await this.#renewCa(existing);
        await tx.put(CA_KEY, encode(next));
        return next;
      });
    }
    const der = decodePem(stored.certificate);
    const names = certificateNames(der);
    return {
      pem: stored.certificate,
      subjectDer: names.subject,
      keyIdHex: keyIdentifier(subjectPublicKeyBits(names.spki)).toString("hex"),
      privateKey: createPrivateKey({ key: stored.privateKey, format: "pem" }),
      notAfter: new x509.X509Certificate(der).notAfter,
    };
  }

  async #createCa(): Promise<StoredKeyPair> {
    const pair = await generateKeyPair(EC_P256);
    return {
      certificate: await this.#selfSign(pair.spki, pair.privateKey),
      privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    };
  }

  /**
   * Issues the CA certificate again for another lifetime, with the same key
   * and subject. Certificates the CA signed before still chain to the new
   * one, and clients that trust the old one accept the new server
   * certificates until the old one expires.
   */
  async #renewCa(stored: StoredKeyPair): Promise<StoredKeyPair> {
    const privateKey = createPrivateKey({ key: stored.privateKey, format: "pem" });
    const spki = certificateNames(decodePem(stored.certificate)).spki;
    return { certificate: await this.#selfSign(spki, privateKey), privateKey: stored.privateKey };
  }

  /** Builds the self-signed CA certificate for a public key (SPKI DER), PEM. */
  async #selfSign(spki: Uint8Array, privateKey: KeyObject): Promise<string> {
    const now = this.#clock().getTime();
    const der = await buildCertificate(
      {
        subject: buildSubject({ common_name: "Keyward KMIP CA", organization: ORGANIZATION }),
        publicKey: spki,
        serialHex: newSerialHex(),
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + CA_LIFETIME_DAYS * DAY_MS),
        ca: { maxPathLength: 0 },
        keyUsage:
          x509.KeyUsageFlags.digitalSignature |
          x509.KeyUsageFlags.keyCertSign |
          x509.KeyUsageFlags.cRLSign,
        extKeyUsageOids: [],
        altNames: [],
        policyOids: [],
        issuingCertificateUrls: [],
        ocspServers: [],
        crlDistributionPoints: [],
      },
      { selfSigner: keyObjectSigner(privateKey, EC_P256), keySpec: EC_P256 },
    );
    return toPem(der, "CERTIFICATE");
  }

  /**
   * Returns this node's server certificate, key and the CA. A certificate is
   * issued when none is stored for the node, when its names differ from
   * `names`, or when it is inside its renewal window.
   */
  async serverCredentials(nodeId: string, names: readonly string[]): Promise<ServerCredentials> {
    const ca = await this.#loadCa();
    const key = `${SERVER_PREFIX}${nodeId}`;
    const sortedNames = [...names].sort();
    let stored = await read<StoredServerCertificate>(this.#barrier, key);
    if (stored === undefined || !this.#serverCertificateUsable(stored, sortedNames)) {
      stored = await this.#issueServerCertificate(ca, sortedNames);
      await this.#barrier.put(key, encode(stored));
    }
    const notAfter = new x509.X509Certificate(decodePem(stored.certificate)).notAfter;
    return {
      credentials: { cert: stored.certificate, key: stored.privateKey, ca: ca.pem },
      renewAt: new Date(notAfter.getTime() - SERVER_RENEW_BEFORE_DAYS * DAY_MS),
    };
  }

  #serverCertificateUsable(stored: StoredServerCertificate, names: readonly string[]): boolean {
    if (stored.names.join(",") !== names.join(",")) return false;
    const notAfter = new x509.X509Certificate(decodePem(stored.certificate)).notAfter;
    return notAfter.getTime() - SERVER_RENEW_BEFORE_DAYS * DAY_MS > this.#clock().getTime();
  }

  async #issueServerCertificate(
    ca: LoadedCa,
    names: readonly string[],
  ): Promise<StoredServerCertificate> {
    const pair = await generateKeyPair(EC_P256);
    const now = this.#clock().getTime();
    const notAfter = Math.min(now + SERVER_LIFETIME_DAYS * DAY_MS, ca.notAfter.getTime());
    const der = await this.#signLeaf(ca, now, {
      subject: buildSubject({ common_name: "Keyward KMIP server", organization: ORGANIZATION }),
      publicKey: pair.spki,
      serialHex: newSerialHex(),
      notAfter: new Date(notAfter),
      keyUsage: x509.KeyUsageFlags.digitalSignature,
      extKeyUsageOids: [SERVER_AUTH],
      altNames: names.map(altName),
    });
    return {
      certificate: toPem(der, "CERTIFICATE"),
      privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string,
      names: [...names],
    };
  }

  /**
   * Signs a client certificate for a public key (SPKI DER). The subject is
   * `O=Keyward KMIP, OU=<role>, CN=<commonName>` and the only extended key
   * usage is clientAuth. The lifetime ends at the CA's expiry at the latest.
   */
  async issueClientCertificate(request: {
    publicKey: Uint8Array;
    keySpec: KeySpec;
    role: string;
    commonName: string;
    ttlSeconds: number;
  }): Promise<IssuedClientCertificate> {
    const ca = await this.#loadCa();
    const now = this.#clock().getTime();
    const notAfter = Math.min(now + request.ttlSeconds * 1000, ca.notAfter.getTime());
    if (notAfter <= now) {
      throw new KeywardError("invalid_state", "the KMIP CA has expired");
    }
    const serialHex = newSerialHex();
    let keyUsage = x509.KeyUsageFlags.digitalSignature;
    if (request.keySpec.type === "rsa") keyUsage |= x509.KeyUsageFlags.keyEncipherment;
    const der = await this.#signLeaf(ca, now, {
      subject: buildSubject({
        common_name: request.commonName,
        organization: ORGANIZATION,
        ou: [request.role],
      }),
      publicKey: request.publicKey,
      serialHex,
      notAfter: new Date(notAfter),
      keyUsage,
      extKeyUsageOids: [CLIENT_AUTH],
      altNames: [],
    });
    return {
      certificate: toPem(der, "CERTIFICATE"),
      serialNumber: serialHex,
      fingerprint: certificateFingerprint(der),
      notAfter: new Date(notAfter),
    };
  }

  /** Returns the CA certificate, PEM, making the CA when none is stored. */
  async ensureCa(): Promise<string> {
    return (await this.#loadCa()).pem;
  }

  /**
   * Signs a leaf certificate with the CA, valid from BACKDATE_MS before
   * `now`, with basic constraints CA:FALSE and no policies, AIA or CRL
   * distribution points.
   */
  #signLeaf(ca: LoadedCa, now: number, fields: LeafFields): Promise<Buffer> {
    return buildCertificate(
      {
        ...fields,
        notBefore: new Date(now - BACKDATE_MS),
        policyOids: [],
        leafBasicConstraints: true,
        issuingCertificateUrls: [],
        ocspServers: [],
        crlDistributionPoints: [],
      },
      this.#signer(ca),
    );
  }

  #signer(ca: LoadedCa) {
    return {
      subjectDer: ca.subjectDer,
      keyIdHex: ca.keyIdHex,
      signer: keyObjectSigner(ca.privateKey, EC_P256),
      keySpec: EC_P256,
    };
  }
}
