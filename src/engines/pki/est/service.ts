import { KeywardError } from "../../../errors.ts";
import { pemDer } from "../ca-certificates.ts";
import { checkCsr } from "../csr.ts";
import type { IssueRequest } from "../issuance.ts";
import type { Role } from "../roles.ts";
import type { PkiService } from "../service.ts";
import { checkSameNames, verifyClientCertificate } from "./client-certificate.ts";
import { EstConfigStore, roleForLabel } from "./config.ts";
import { csrAttributesFor } from "./csr-attributes.ts";
import { decodeBase64Body } from "./encoding.ts";
import { EnrollmentSecrets, invalidCredentials } from "./enrollment-secrets.ts";
import { encodeCertsOnly } from "./pkcs7.ts";

/** HTTP Basic credentials: the device id and its enrolment secret. */
export interface BasicCredentials {
  deviceId: string;
  secret: string;
}

/** How an EST client authenticated: HTTP Basic, a TLS client certificate (DER), or both. */
export interface EstClient {
  basic?: BasicCredentials;
  certificateDer?: Uint8Array;
}

/** The result of serverkeygen: the new private key and its certificate. */
export interface ServerGeneratedKey {
  /** The private key, PKCS#8 DER. */
  pkcs8: Buffer;
  /** The certificate as a certs-only SignedData, DER. */
  pkcs7: Buffer;
}

/**
 * Copies the names of a checked CSR into `issue` request fields, honouring
 * the role's `use_csr_common_name` and `use_csr_sans` as `sign` does.
 */
function issueNamesOf(csr: Awaited<ReturnType<typeof checkCsr>>, role: Role): IssueRequest {
  const values = (types: string[]) =>
    role.use_csr_sans
      ? csr.altNames.filter((name) => types.includes(name.type)).map((name) => name.value)
      : [];
  return {
    common_name: role.use_csr_common_name ? csr.commonName : "",
    alt_names: values(["dns", "email"]),
    ip_sans: values(["ip"]),
    uri_sans: values(["url"]),
  };
}

/**
 * EST (RFC 7030) on one PKI mount: the operations behind `cacerts`,
 * `simpleenroll`, `simplereenroll`, `serverkeygen` and `csrattrs`, with
 * the mount's EST configuration and enrolment secrets. Each label (or the
 * unlabelled path) issues under the role its path policy names. Inputs and
 * Request bodies arrive as the base64 text the client sent, and are
 * decoded only after the client is authenticated. Outputs are DER; the
 * routes add the base64 and media types.
 */
export class EstService {
  readonly config: EstConfigStore;
  readonly secrets: EnrollmentSecrets;
  readonly #pki: PkiService;

  constructor(pki: PkiService) {
    this.#pki = pki;
    this.config = new EstConfigStore(pki.context.store, pki.context.clock);
    this.secrets = new EnrollmentSecrets(pki.context.store, pki.context.clock);
  }

  get mount(): string {
    return this.#pki.mount;
  }

  /** Returns the role name and role that serve `label`; throws `not_found` when EST or the label is not configured. */
  async roleFor(label: string | undefined): Promise<{ name: string; role: Role }> {
    const name = roleForLabel(await this.config.read(), this.mount, label);
    const role = await this.#pki.readRole(name);
    if (!role) {
      throw new KeywardError(
        "not_found",
        `role "${name}", named by the EST path policy, does not exist on mount "${this.mount}"`,
      );
    }
    return { name, role };
  }

  /** Returns the CA certificates of the role's issuer, the issuer first and then its chain, as a certs-only SignedData. */
  async caCertificates(label: string | undefined): Promise<Buffer> {
    const { role } = await this.roleFor(label);
    const issuer = await this.#pki.issuers.resolve(role.issuer_ref);
    const chain = await this.#pki.issuers.chain(issuer);
    return encodeCertsOnly(chain.map((pem) => pemDer(pem)));
  }

  /** Returns the CsrAttrs DER for the label's role, or undefined when the role requires no particular key. */
  async csrAttributes(label: string | undefined): Promise<Buffer | undefined> {
    const { role } = await this.roleFor(label);
    return csrAttributesFor(role);
  }

  /** Issues a certificate for a CSR authenticated by a device's enrolment secret, which it uses up. */
  async simpleEnroll(label: string | undefined, body: string, client: EstClient): Promise<Buffer> {
    const { name } = await this.roleFor(label);
    const basic = client.basic;
    if (!basic) throw invalidCredentials("missing");
    // A secret created without a label enrols at any label of this mount,
    // under that label's role. A labelled secret enrols only at its label.
    const issued = await this.secrets.redeem(basic.deviceId, basic.secret, label, () =>
      this.#pki.sign(name, { csr: decodeBase64Body(body).toString("base64"), format: "der" }),
    );
    this.#logIssued("simpleenroll", label, issued.serial_number, { deviceId: basic.deviceId });
    return encodeCertsOnly([Buffer.from(issued.certificate, "base64")]);
  }

  /**
   * Renews a certificate: the client authenticates with the certificate
   * being renewed, which the mount must have stored as issued under the
   * label's role, and the CSR must repeat its subject and SANs (RFC 7030
   * section 4.2.2). The role checks the names again.
   */
  async simpleReenroll(
    label: string | undefined,
    body: string,
    client: EstClient,
  ): Promise<Buffer> {
    const { name } = await this.roleFor(label);
    const current = await this.#requireClientCertificate(client, name);
    const csrBase64 = decodeBase64Body(body).toString("base64");
    checkSameNames(current, await checkCsr(csrBase64));
    const issued = await this.#pki.sign(name, { csr: csrBase64, format: "der" });
    this.#logIssued("simplereenroll", label, issued.serial_number, {
      renewedSerial: current.serialNumber,
    });
    return encodeCertsOnly([Buffer.from(issued.certificate, "base64")]);
  }

  /**
   * Generates a key pair of the role's type and issues a certificate for
   * the CSR's names (RFC 7030 section 4.4). The CSR's own key is not used.
   * With an enrolment secret the secret is used up. With a client
   * certificate, that certificate must pass the re-enrolment checks and
   * the CSR must repeat its names. The key is returned unencrypted,
   * protected only by TLS.
   */
  async serverKeygen(
    label: string | undefined,
    body: string,
    client: EstClient,
  ): Promise<ServerGeneratedKey> {
    const { name, role } = await this.roleFor(label);
    const request: IssueRequest = { format: "der", private_key_format: "pkcs8" };
    let issued: Awaited<ReturnType<PkiService["issue"]>>;
    if (client.basic) {
      const basic = client.basic;
      issued = await this.secrets.redeem(basic.deviceId, basic.secret, label, async () => {
        const csr = await checkCsr(decodeBase64Body(body).toString("base64"));
        return this.#pki.issue(name, { ...request, ...issueNamesOf(csr, role) });
      });
      this.#logIssued("serverkeygen", label, issued.serial_number, { deviceId: basic.deviceId });
    } else if (client.certificateDer) {
      const current = await this.#requireClientCertificate(client, name);
      const csr = await checkCsr(decodeBase64Body(body).toString("base64"));
      checkSameNames(current, csr);
      issued = await this.#pki.issue(name, { ...request, ...issueNamesOf(csr, role) });
      this.#logIssued("serverkeygen", label, issued.serial_number, {
        renewedSerial: current.serialNumber,
      });
    } else {
      throw invalidCredentials("missing");
    }
    if (issued.private_key === undefined) {
      throw new KeywardError("internal", "internal error", {
        details: { reason: "issue returned no private key" },
      });
    }
    return {
      pkcs8: Buffer.from(issued.private_key, "base64"),
      pkcs7: encodeCertsOnly([Buffer.from(issued.certificate, "base64")]),
    };
  }

  /** Verifies the client's TLS certificate for renewal under `roleName` (see `verifyClientCertificate`). */
  async #requireClientCertificate(client: EstClient, roleName: string) {
    if (!client.certificateDer) {
      throw new KeywardError(
        "permission_denied",
        "this operation needs a TLS client certificate issued by this mount",
        { details: { reason: "no_client_certificate" } },
      );
    }
    return verifyClientCertificate(this.#pki.context, client.certificateDer, roleName);
  }

  #logIssued(
    operation: string,
    label: string | undefined,
    serial: string,
    fields: Record<string, unknown>,
  ): void {
    this.#pki.logger?.info(
      { mount: this.mount, operation, label, serial, ...fields },
      "EST certificate issued",
    );
  }
}
