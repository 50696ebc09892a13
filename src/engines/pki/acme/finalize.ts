import { createPublicKey } from "node:crypto";
import { importSpki } from "../../../crypto/key-safety.ts";
import { checkCsr } from "../csr.ts";
import { checkRoleKey, issueCertificate } from "../issuance.ts";
import { type KeySpec, serialHexOf } from "../key-pairs.ts";
import { parseCertificates, toPem } from "../pem.ts";
import type { AuthenticatedRequest } from "./authenticate.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { canonicalIp, identifierKey } from "./identifiers.ts";
import { orderResponse, ownOrder } from "./orders.ts";
import { type IssuancePolicy, issuancePolicy } from "./policy.ts";
import { AcmeProblem, notFoundProblem, toProblem } from "./problems.ts";
import type { AcmeCertificateRecord, Identifier, OrderRecord } from "./records.ts";
import { issuanceValidity } from "./validity.ts";

/** Maximum CSR length accepted, in base64url characters. */
const MAX_CSR_LENGTH = 64 * 1024;

export const PEM_CHAIN_CONTENT_TYPE = "application/pem-certificate-chain";

/**
 * Checks that a CSR requests exactly the order's identifiers (RFC 8555
 * section 7.4): its DNS and IP subject alternative names, with the common
 * name if present, equal the order's set, and it has no other name types.
 * The CSR's key must not be the account key. Throws `badCSR`.
 */
async function checkCsrMatchesOrder(
  csrPem: string,
  order: OrderRecord,
  request: AuthenticatedRequest,
): Promise<{ commonName: string; keySpec: KeySpec }> {
  const csr = await checkCsr(csrPem);
  const requested = new Set<string>();
  for (const name of csr.altNames) {
    if (name.type === "dns")
      requested.add(identifierKey({ type: "dns", value: name.value.toLowerCase() }));
    else if (name.type === "ip") {
      const ip = canonicalIp(name.value);
      if (ip === undefined)
        throw new AcmeProblem("badCSR", `the CSR has an invalid IP address "${name.value}"`);
      requested.add(identifierKey({ type: "ip", value: ip }));
    } else {
      throw new AcmeProblem(
        "badCSR",
        `the CSR has a ${name.type} name; only the order's DNS and IP identifiers may appear`,
      );
    }
  }
  const commonName = csr.commonName.toLowerCase();
  if (commonName !== "") {
    const ip = canonicalIp(commonName);
    const key = identifierKey(ip ? { type: "ip", value: ip } : { type: "dns", value: commonName });
    if (!order.identifiers.some((identifier) => identifierKey(identifier) === key)) {
      throw new AcmeProblem(
        "badCSR",
        `the CSR's common name "${csr.commonName}" is not an identifier of the order`,
      );
    }
    requested.add(key);
  }
  const expected = new Set(order.identifiers.map(identifierKey));
  const missing = [...expected].filter((key) => !requested.has(key));
  const extra = [...requested].filter((key) => !expected.has(key));
  if (missing.length > 0 || extra.length > 0) {
    throw new AcmeProblem(
      "badCSR",
      `the CSR's names differ from the order's identifiers${missing.length ? `; missing ${missing.join(", ")}` : ""}${extra.length ? `; not in the order ${extra.join(", ")}` : ""}`,
    );
  }
  const csrKey = importSpki(csr.publicKey);
  const accountKey = createPublicKey({ key: request.jwk as never, format: "jwk" });
  if (csrKey.equals(accountKey)) {
    throw new AcmeProblem(
      "badCSR",
      "the CSR's key is the account key; use a separate key for the certificate",
    );
  }
  return { commonName: csr.commonName, keySpec: csr.keySpec };
}

/** Returns the common name to write: the CSR's, else the first DNS identifier, else the first identifier. */
function chooseCommonName(csrCommonName: string, identifiers: Identifier[]): string {
  if (csrCommonName !== "") return csrCommonName.toLowerCase();
  return (identifiers.find((identifier) => identifier.type === "dns") ?? identifiers[0]!).value;
}

async function issue(
  context: AcmeContext,
  policy: IssuancePolicy,
  order: OrderRecord,
  csrPem: string,
  commonName: string,
) {
  const pki = context.pki;
  // One instant for the whole issuance, so a requested notBefore lands on the exact second.
  const issuedAt = context.clock();
  const validity = issuanceValidity(order, policy.role, pki.context.mountTtls(), issuedAt);
  return issueCertificate(validity ? { ...pki.context, clock: () => issuedAt } : pki.context, {
    role: validity?.role ?? policy.role,
    roleName: policy.roleName === "" ? "acme-sign-verbatim" : policy.roleName,
    request: {
      csr: csrPem,
      common_name: commonName,
      alt_names: order.identifiers.filter((i) => i.type === "dns").map((i) => i.value),
      ip_sans: order.identifiers.filter((i) => i.type === "ip").map((i) => i.value),
      format: "pem",
      ...(validity ? { not_after: validity.notAfter } : {}),
    },
    mode: { kind: "sign" },
  });
}

/**
 * Serves finalize (RFC 8555 section 7.4): checks the CSR against a ready
 * order, issues through the directory's role and stores the chain. A bad
 * CSR leaves the order ready; a failed issuance makes it invalid.
 */
export async function finalizeOrder(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  orderId: string,
): Promise<AcmeResponse> {
  const order = await ownOrder(context, scope, request, orderId);
  const payload = request.payload;
  if (payload === undefined || typeof payload.csr !== "string" || payload.csr === "") {
    throw new AcmeProblem(
      "malformed",
      'finalize needs a payload with "csr", the DER CSR in base64url',
    );
  }
  if (payload.csr.length > MAX_CSR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(payload.csr)) {
    throw new AcmeProblem("badCSR", '"csr" must be a DER CSR in base64url');
  }
  if (order.status !== "ready") {
    throw new AcmeProblem("orderNotReady", `the order is ${order.status}, not ready`);
  }
  const csrPem = toPem(Buffer.from(payload.csr, "base64url"), "CERTIFICATE REQUEST");
  const { commonName, keySpec } = await checkCsrMatchesOrder(csrPem, order, request);
  const policy = await issuancePolicy(context.pki, scope.config, scope.directory);
  // A key the role forbids is a bad CSR, so check it before the order leaves ready.
  try {
    checkRoleKey(policy.role, keySpec);
  } catch (error) {
    throw toProblem(error);
  }

  const { store } = context;
  const processing = await store.withLock(`orders/${orderId}`, async () => {
    const current = await store.order(orderId);
    if (current?.status !== "ready") {
      throw new AcmeProblem(
        "orderNotReady",
        `the order is ${current?.status ?? "gone"}, not ready`,
      );
    }
    const changed: OrderRecord = { ...current, status: "processing" };
    await store.putOrder(changed);
    return changed;
  });

  let finished: OrderRecord;
  try {
    const issued = await issue(
      context,
      policy,
      processing,
      csrPem,
      chooseCommonName(commonName, order.identifiers),
    );
    const [leaf] = parseCertificates(issued.certificate, "certificate");
    const chainPem = [issued.certificate, ...downloadChain(issued.ca_chain)]
      .map((pem) => `${pem.trim()}\n`)
      .join("");
    const record: AcmeCertificateRecord = {
      serialHex: serialHexOf(leaf!),
      accountId: order.accountId,
      orderId,
      directory: scope.directory,
      chainPem,
      issuerId: (await context.pki.inventory.find(serialHexOf(leaf!)))?.issuerId ?? "",
      notBefore: leaf!.notBefore.toISOString(),
      notAfter: leaf!.notAfter.toISOString(),
    };
    await store.putCertificate(record);
    finished = { ...processing, status: "valid", certificateSerial: record.serialHex };
    context.logger?.info(
      { mount: context.pki.mount, order: orderId, serial: record.serialHex, role: policy.roleName },
      "issued ACME certificate",
    );
  } catch (error) {
    const problem = toProblem(error);
    finished = { ...processing, status: "invalid", error: problem.toDocument() };
    await store.putOrder(finished);
    if (problem.status >= 500) {
      context.logger?.error(
        { mount: context.pki.mount, order: orderId, err: error },
        "ACME issuance failed",
      );
    }
    throw problem;
  }
  await store.putOrder(finished);
  return orderResponse(scope, finished, 200);
}

/**
 * Returns the certificates sent after the leaf: the issuer and its parents,
 * without a self-signed root unless the root issued the leaf itself, since
 * clients already trust the root.
 */
function downloadChain(caChain: string[]): string[] {
  return caChain.filter((pem, index) => index === 0 || !isSelfSigned(pem));
}

function isSelfSigned(pem: string): boolean {
  const [certificate] = parseCertificates(pem, "certificate");
  return certificate !== undefined && certificate.subject === certificate.issuer;
}

/** Serves a POST-as-GET to a certificate URL: the leaf and its chain as `application/pem-certificate-chain`. */
export async function downloadCertificate(
  context: AcmeContext,
  scope: AcmeScope,
  request: AuthenticatedRequest,
  serialHex: string,
): Promise<AcmeResponse> {
  const record = await context.store.certificate(serialHex);
  if (!record || record.directory !== scope.directory) throw notFoundProblem("certificate");
  if (record.accountId !== request.account?.id) {
    throw new AcmeProblem("unauthorized", "the certificate belongs to another account");
  }
  return { status: 200, body: record.chainPem, contentType: PEM_CHAIN_CONTENT_TYPE };
}
