import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { transitDataSigner } from "../../src/engines/pki/ca-transit.ts";
import { signCertificate } from "../../src/engines/pki/certificate.ts";
import type { KeySpec } from "../../src/engines/pki/key-pairs.ts";
import * as x509 from "../../src/engines/pki/x509.ts";
import type { TransitService } from "../../src/engines/transit/service.ts";

/** The transit key a CA certificate is made for, and the certificate's subject and serial number. */
export interface TransitCaOptions {
  /** The key's name on the `transit` mount; version 1 signs. */
  name: string;
  /** The key's public key, as transit returns it (PEM). */
  publicKeyPem: string;
  keySpec: KeySpec;
  commonName: string;
  serialHex: string;
}

/**
 * Makes a self-signed CA certificate for a transit key by signing through
 * transit itself, as an operator would with an external tool, and returns
 * it as PEM. The certificate is valid from a minute ago for 365 days and
 * may sign certificates and CRLs.
 */
export async function selfSignTransitCa(
  transit: TransitService,
  options: TransitCaOptions,
): Promise<string> {
  const spki = createPublicKey(options.publicKeyPem).export({ format: "der", type: "spki" });
  const certificate = await signCertificate(
    {
      subject: [{ CN: [options.commonName] }],
      publicKey: spki,
      serialHex: options.serialHex,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000),
      ca: {},
      keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      extKeyUsageOids: [],
      altNames: [],
      policyOids: [],
      issuingCertificateUrls: [],
      ocspServers: [],
      crlDistributionPoints: [],
    },
    {
      selfSigner: transitDataSigner(
        transit,
        { mount: "transit", name: options.name, version: 1 },
        options.keySpec,
      ),
      keySpec: options.keySpec,
    },
  );
  return certificate.toString("pem");
}

/** An API that takes requests with the root token, such as `HsmTestApp`. */
interface RootRequests {
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
}

/**
 * Mounts PKI at `pki`, imports `rootPem` as an issuer whose key is the
 * transit key `transitKey`, and issues a leaf for www.example.test through
 * a role `web`. Returns the `data` of the import and of the issue response,
 * and fails the test on any response that is not 2xx.
 */
export async function issueLeafFromTransitRoot(
  api: RootRequests,
  rootPem: string,
  transitKey: string,
  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
): Promise<{ imported: Record<string, any>; issued: Record<string, any> }> {
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  async function ok(url: string, payload: object): Promise<Record<string, any>> {
    const response = await api.request({ method: "POST", url: `/v1/${url}`, payload });
    assert.ok(response.statusCode < 300, `POST ${url}: ${response.body}`);
    return response.body === "" ? {} : response.json().data;
  }

  await ok("sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
  const imported = await ok("pki/issuers/import/transit", {
    certificate: rootPem,
    transit_key: transitKey,
  });
  await ok("pki/roles/web", {
    allowed_domains: "example.test",
    allow_subdomains: true,
    key_type: "ec",
    ttl: "1h",
  });
  const issued = await ok(`pki/issuer/${imported.issuer_id}/issue/web`, {
    common_name: "www.example.test",
  });
  return { imported, issued };
}
