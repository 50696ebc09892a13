import { createPrivateKey } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import type { PkiContext } from "./context.ts";
import { unixSeconds } from "./context.ts";
import { CrlService } from "./crls.ts";
import { putRevocation } from "./inventory.ts";
import { revokeIssuer } from "./issuer-revocation.ts";
import { issuerCanSign, pemDer } from "./issuers.ts";
import { canonicalPublicKey } from "./key-checks.ts";
import { publicKeyOf, readPrivateKeyPem, serialHexOf } from "./key-pairs.ts";
import { OcspResponders } from "./ocsp-delegation.ts";
import { answerOcsp } from "./ocsp-responder.ts";
import { parseCertificates } from "./pem.ts";
import type { RevocationReason } from "./revocation/index.ts";
import type { PkiLogger } from "./service.ts";
import { TidyService } from "./tidy.ts";
import type { CrlRecord, IssuerRecord, RevokedRecord } from "./types.ts";
import { REVOCATION_REASONS } from "./types.ts";

/**
 * Revocation for one mount: revoking certificates, with the issuers' CRLs
 * (`crls`), the OCSP responder (`ocsp`) and tidy (`tidy`). Revoked serials
 * are indexed at `revoked/<serial>`.
 */
export class RevocationService {
  readonly #context: PkiContext;
  readonly #logger: PkiLogger | undefined;
  readonly crls: CrlService;
  readonly tidy: TidyService;
  /** Delegated OCSP responders, one per issuer. */
  readonly responders: OcspResponders;

  constructor(context: PkiContext, logger?: PkiLogger) {
    this.#context = context;
    this.#logger = logger;
    this.crls = new CrlService(context);
    this.tidy = new TidyService(context, this.crls, logger);
    this.responders = new OcspResponders(context);
  }

  /** Builds the response to a DER OCSP request (see `answerOcsp`). */
  async ocsp(der: Uint8Array): Promise<Uint8Array> {
    return answerOcsp(this.#context, der, this.responders);
  }

  /**
   * Revokes a stored certificate and rebuilds its issuer's CRL. Revoking a
   * revoked certificate returns its first revocation time. A CA
   * certificate of this mount cannot be revoked here. When the issuer was
   * deleted or has no signing key, the certificate is revoked all the same
   * but appears on no CRL of this mount, because none can be signed for it.
   */
  async revoke(serialHex: string, reason?: RevocationReason) {
    if (reason !== undefined && !(REVOCATION_REASONS as readonly string[]).includes(reason)) {
      throw new KeywardError(
        "invalid_field",
        `"reason" must be one of ${REVOCATION_REASONS.join(", ")}`,
        {
          field: "reason",
        },
      );
    }
    const { inventory, issuers, store, clock } = this.#context;
    const notFound = () =>
      new KeywardError(
        "not_found",
        `certificate ${serialHex} not found; it was never issued here or was issued with no_store`,
        { field: "serial_number" },
      );
    const revoked = await store.withLock(`certs/${serialHex}`, async () => {
      const record = await inventory.find(serialHex);
      if (!record) throw notFound();
      if ((await issuers.list()).some((issuer) => issuer.serialHex === serialHex)) {
        throw new KeywardError(
          "invalid_request",
          "this certificate is an issuer of this mount; delete or replace the issuer instead",
          {
            field: "serial_number",
          },
        );
      }
      if (record.revokedAt !== undefined) return { record, changed: false };
      const revokedAt = new Date(Math.floor(clock().getTime() / 1000) * 1000).toISOString();
      const updated = { ...record, revokedAt, ...(reason ? { revocationReason: reason } : {}) };
      const entry: RevokedRecord = {
        serialHex,
        issuerId: record.issuerId,
        revokedAt,
        ...(reason ? { reason } : {}),
        notAfter: record.notAfter,
      };
      await store.transaction(async (tx) => {
        // Tidy may have deleted the record meanwhile; it must not come back without its index entries.
        if (!(await tx.get(`certs/${serialHex}`))) throw notFound();
        await putRevocation(tx, entry);
        await tx.put(`certs/${serialHex}`, updated);
      });
      return { record: updated, changed: true };
    });
    if (revoked.changed) {
      this.#logger?.info({ mount: this.#context.mount, serial: serialHex }, "revoked certificate");
      await this.#afterRevocation(revoked.record.issuerId);
    } else if (!(await this.#baseCrlLists(revoked.record.issuerId, serialHex))) {
      // An earlier request committed the revocation but failed to rebuild
      // the CRL, so this retry rebuilds it.
      await this.#afterRevocation(revoked.record.issuerId);
    }
    const revokedAt = new Date(revoked.record.revokedAt!);
    return {
      revocation_time: unixSeconds(revokedAt),
      revocation_time_rfc3339: revokedAt.toISOString(),
      state: "revoked",
    };
  }

  /** Revokes a certificate for its holder, who proves possession with the private key. */
  async revokeWithKey(certificatePem: string, privateKeyPem: string) {
    const [certificate] = parseCertificates(certificatePem, "certificate");
    if (!certificate)
      throw new KeywardError("invalid_certificate", '"certificate" contains no certificate', {
        field: "certificate",
      });
    const pkcs8 = readPrivateKeyPem(privateKeyPem, "private_key");
    const keyPublic = canonicalPublicKey(publicKeyOf(pkcs8));
    // Canonical forms, so a certificate with a compressed EC point matches its key.
    let certificatePublic: string;
    try {
      certificatePublic = canonicalPublicKey(new Uint8Array(certificate.publicKey.rawData));
    } catch (error) {
      throw new KeywardError(
        "invalid_certificate",
        'the public key in "certificate" cannot be used',
        { field: "certificate", cause: error },
      );
    }
    // Touch the key once more so a malformed one fails here, not later.
    createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    if (keyPublic !== certificatePublic) {
      throw new KeywardError(
        "invalid_request",
        '"private_key" does not match the certificate\'s public key',
        {
          field: "private_key",
        },
      );
    }
    const serialHex = serialHexOf(certificate);
    const stored = await this.#context.inventory.find(serialHex);
    if (!stored || !pemDer(stored.certificatePem).equals(Buffer.from(certificate.rawData))) {
      throw new KeywardError("not_found", "the certificate was not issued by this mount", {
        field: "certificate",
      });
    }
    return this.revoke(serialHex);
  }

  /**
   * Revokes an issuer (see `revokeIssuer`) and rebuilds the CRL of the
   * issuer that signed it, when that issuer is in this mount. Revoking a
   * revoked issuer changes nothing and returns it.
   */
  async revokeIssuer(ref: string): Promise<IssuerRecord> {
    const result = await revokeIssuer(this.#context, ref);
    if (result.changed) {
      this.#logger?.info(
        { mount: this.#context.mount, issuer: result.issuer.id, parent: result.parent?.id },
        "revoked issuer",
      );
      if (result.parent) await this.#afterRevocation(result.parent.id);
    }
    return result.issuer;
  }

  /** True when the issuer's stored base CRL lists `serialHex`. */
  async #baseCrlLists(issuerId: string, serialHex: string): Promise<boolean> {
    const record = await this.#context.store.get<CrlRecord>(`crls/${issuerId}`);
    return record?.baseSerials.includes(serialHex) === true;
  }

  async #afterRevocation(issuerId: string): Promise<void> {
    const config = await this.#context.config.crl();
    if (config.disable) return;
    // Read by id: `issuers.resolve` would also match an issuer whose name is this id.
    const issuer = await this.#context.store.get<IssuerRecord>(`issuers/${issuerId}`);
    if (!issuer || !issuerCanSign(issuer)) {
      this.#logger?.warn(
        { mount: this.#context.mount, issuer: issuerId },
        issuer
          ? "issuer of revoked certificate has no signing key; CRL not rebuilt"
          : "issuer of revoked certificate was deleted; no CRL rebuilt",
      );
      return;
    }
    if (config.autoRebuild && config.enableDelta) await this.crls.rebuildDelta(issuer);
    else await this.crls.rebuild(issuer);
  }
}
