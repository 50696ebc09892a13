import { KeywardError, missingField } from "../../errors.ts";
import { importBundle } from "./ca-import.ts";
import {
  type CaRequest,
  generateIntermediateCsr,
  generateRoot,
  signIntermediate,
} from "./ca-operations.ts";
import type { PkiContext } from "./context.ts";
import { deleteCertificate } from "./inventory.ts";
import { issuerUsage } from "./issuers.ts";
import type { PkiTransaction } from "./store.ts";
import type { CertificateRecord, IssuerRecord } from "./types.ts";

/** Sources of a rotation's new issuer. */
export const ROTATION_SOURCES = ["root", "intermediate", "import", "existing"] as const;
export type RotationSource = (typeof ROTATION_SOURCES)[number];

/** Fields of `issuers/rotate/prepare`: the CA generation fields of `root/generate`, plus the source. */
export interface PrepareRequest extends CaRequest {
  /** `root` (the default) or `intermediate` generate, `import` reads `pem_bundle`, `existing` adopts `issuer_ref`. */
  source?: RotationSource;
  /** For `intermediate`: the issuer of this mount that signs the new intermediate. */
  parent_issuer_ref?: string;
  /** For `import`: the new CA certificate first, then its chain, and its private key unless Keyward stores it. */
  pem_bundle?: string;
  /** For `existing`: an issuer of this mount that is not the default. */
  issuer_ref?: string;
}

/** The issuer a rotation will switch to, and what rolling back its preparation deletes. */
export interface NextIssuer {
  issuer: IssuerRecord;
  /** True when the issuer was created for the rotation. */
  created: boolean;
  /** Id of the key stored for the issuer, or empty when the key was stored before. */
  createdKeyId: string;
}

/**
 * Creates or adopts the issuer that a rotation away from `oldIssuer` will
 * switch to, and checks that it can sign: it has its private key in
 * Keyward, may issue certificates and has not expired. Generated keys are
 * always `internal`, so no private key leaves Keyward.
 */
export async function createNextIssuer(
  context: PkiContext,
  request: PrepareRequest,
  oldIssuer: IssuerRecord,
): Promise<NextIssuer> {
  const source = request.source ?? "root";
  const next = await createBySource(context, source, request);
  try {
    await checkNextIssuer(context, next.issuer, oldIssuer);
  } catch (error) {
    if (next.created) await deleteCreated(context.store, next.issuer.id, next.createdKeyId);
    throw error;
  }
  return next;
}

async function createBySource(
  context: PkiContext,
  source: RotationSource,
  request: PrepareRequest,
): Promise<NextIssuer> {
  const caRequest = caFields(request);
  if (source === "root" || source === "intermediate") await requireFreeName(context, request);
  switch (source) {
    case "root": {
      const root = await generateRoot(context, "internal", caRequest);
      return {
        issuer: await context.issuers.resolve(root.issuer_id),
        created: true,
        createdKeyId: root.key_id,
      };
    }
    case "intermediate":
      return createIntermediate(context, request, caRequest);
    case "import":
      return importIssuer(context, request);
    case "existing": {
      if (!request.issuer_ref) throw missingField("issuer_ref");
      const issuer = await context.issuers.resolve(request.issuer_ref, "issuer_ref");
      return { issuer, created: false, createdKeyId: "" };
    }
  }
}

/**
 * Rejects an `issuer_name` that another issuer has before a key is
 * generated, so a taken name leaves no unused key behind.
 */
async function requireFreeName(context: PkiContext, request: PrepareRequest): Promise<void> {
  const name = request.issuer_name;
  if (!name) return;
  if ((await context.issuers.list()).some((issuer) => issuer.name === name)) {
    throw new KeywardError("already_exists", `an issuer named "${name}" exists`, {
      field: "issuer_name",
    });
  }
}

/** Returns the request without the rotation's own fields, for the CA operations. */
function caFields(request: PrepareRequest): CaRequest {
  const {
    source: _source,
    parent_issuer_ref: _parent,
    pem_bundle: _bundle,
    issuer_ref: _issuer,
    ...fields
  } = request;
  return { ...fields, format: "pem" };
}

/** Generates a key and an intermediate certificate signed by `parent_issuer_ref`, and stores them as an issuer. */
async function createIntermediate(
  context: PkiContext,
  request: PrepareRequest,
  caRequest: CaRequest,
): Promise<NextIssuer> {
  if (!request.parent_issuer_ref) throw missingField("parent_issuer_ref");
  const parent = await context.issuers.resolve(request.parent_issuer_ref, "parent_issuer_ref");
  const csr = await generateIntermediateCsr(context, "internal", caRequest);
  let issuerId = "";
  try {
    const signed = await signIntermediate(context, parent, { ...caRequest, csr: csr.csr });
    const bundle = [signed.certificate, ...signed.ca_chain.slice(1)].join("\n");
    const imported = await importBundle(context, bundle, "certificate", {
      requireKeyForFirst: true,
      keysAlone: false,
    });
    issuerId = Object.keys(imported.mapping)[0] as string;
    // intermediate/generate names only the key, so the issuer gets its name here.
    const issuer = request.issuer_name
      ? await context.issuers.updateIssuer(issuerId, { name: request.issuer_name })
      : await context.issuers.resolve(issuerId);
    return { issuer, created: true, createdKeyId: csr.key_id };
  } catch (error) {
    if (issuerId !== "") await deleteCreated(context.store, issuerId, csr.key_id);
    else await context.store.delete(`keys/${csr.key_id}`);
    throw error;
  }
}

/**
 * Imports `pem_bundle` and takes its first certificate as the new issuer.
 * A certificate that is already an issuer of the mount is adopted as it is.
 */
async function importIssuer(context: PkiContext, request: PrepareRequest): Promise<NextIssuer> {
  if (!request.pem_bundle) throw missingField("pem_bundle");
  const imported = await importBundle(context, request.pem_bundle, "pem_bundle", {
    requireKeyForFirst: false,
    keysAlone: false,
  });
  // importBundle fills `mapping` in the bundle's certificate order.
  const issuerId = Object.keys(imported.mapping)[0] as string;
  const issuer = await context.issuers.resolve(issuerId);
  const created = imported.imported_issuers.includes(issuerId);
  return {
    issuer,
    created,
    // A key imported for an issuer that existed before belongs to that issuer, so it is kept.
    createdKeyId: created && imported.imported_keys.includes(issuer.keyId) ? issuer.keyId : "",
  };
}

async function checkNextIssuer(
  context: PkiContext,
  issuer: IssuerRecord,
  oldIssuer: IssuerRecord,
): Promise<void> {
  const label = issuer.name || issuer.id;
  if (issuer.id === oldIssuer.id) {
    throw new KeywardError(
      "invalid_request",
      `issuer "${label}" is the default issuer already; name another issuer to rotate to`,
      { field: "issuer_ref" },
    );
  }
  if (!issuerUsage(issuer).includes("issuing-certificates")) {
    throw new KeywardError(
      "invalid_state",
      `issuer "${label}" may not issue certificates, so it cannot become the default issuer`,
      { field: "issuer_ref" },
    );
  }
  if (Date.parse(issuer.notAfter) <= context.clock().getTime()) {
    throw new KeywardError(
      "invalid_state",
      `issuer "${label}" expired at ${issuer.notAfter}, so it cannot become the default issuer`,
      { field: "issuer_ref" },
    );
  }
  // Throws invalid_state when Keyward does not hold the issuer's private key.
  await context.issuers.load(issuer);
}

/** The reads and deletes `deleteCreated` needs, which both the store and a transaction offer. */
type RecordWriter = Pick<PkiTransaction, "get" | "delete">;

/**
 * Deletes an issuer created for a rotation, with the key stored for it,
 * its CRL, and the inventory record of its own certificate when it is filed
 * under the issuer itself (`root/generate` files a root so). The record of
 * an intermediate's certificate stays with the parent that signed it.
 */
export async function deleteCreated(
  writer: RecordWriter,
  issuerId: string,
  createdKeyId: string,
): Promise<void> {
  const issuer = await writer.get<IssuerRecord>(`issuers/${issuerId}`);
  await writer.delete(`issuers/${issuerId}`);
  await writer.delete(`crls/${issuerId}`);
  if (createdKeyId !== "") await writer.delete(`keys/${createdKeyId}`);
  if (issuer) {
    const own = await writer.get<CertificateRecord>(`certs/${issuer.serialHex}`);
    if (own?.issuerId === issuerId) await deleteCertificate(writer, own);
  }
}
