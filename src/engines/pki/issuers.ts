import { randomUUID } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { checkCaPublicKey } from "./ca-bundle.ts";
import { CaCertificateCache } from "./ca-certificates.ts";
import type { TransitResolver } from "./ca-transit.ts";
import type { CertificateSigner } from "./certificate.ts";
import { certificateNames } from "./der.ts";
import {
  type BundleImport,
  type ImportedCertificate,
  type ImportedKey,
  planBundleImport,
} from "./issuer-import.ts";
import { IssuerKeys } from "./issuer-keys.ts";
import { canonicalPublicKey } from "./key-checks.ts";
import { type KeySpec, publicKeyOf, type SigningKey, serialHexOf } from "./key-pairs.ts";
import {
  claimObjectName,
  NAMED,
  type Named,
  rejectListedName,
  releaseObjectName,
  validateObjectName,
} from "./object-names.ts";
import { toPem } from "./pem.ts";
import type { PkiStore, PkiTransaction } from "./store.ts";
import {
  ISSUER_USAGES,
  type IssuerRecord,
  type IssuersConfig,
  type IssuerUsage,
  type KeyRecord,
  type LeafNotAfterBehavior,
  type TransitKeyRef,
} from "./types.ts";
import type * as x509 from "./x509.ts";

/** Returns what an issuer may do: its stored `usage`, or every usage when none is stored. */
export function issuerUsage(issuer: IssuerRecord): IssuerUsage[] {
  return issuer.usage ?? [...ISSUER_USAGES];
}

/** Returns whether Keyward can sign with an issuer's key: a stored key, or a transit key. */
export function issuerCanSign(issuer: IssuerRecord): boolean {
  return issuer.keyId !== "" || issuer.transitKey !== undefined;
}

/** Claims the key's name and writes the key, inside `tx`. */
async function writeKey(tx: PkiTransaction, key: KeyRecord): Promise<void> {
  await claimObjectName(tx, NAMED.key, key.name, key.id);
  await tx.put(`keys/${key.id}`, key);
}

/** Claims the issuer's name and writes the issuer, inside `tx`. */
async function writeIssuer(tx: PkiTransaction, issuer: IssuerRecord): Promise<void> {
  await claimObjectName(tx, NAMED.issuer, issuer.name, issuer.id);
  await tx.put(`issuers/${issuer.id}`, issuer);
}

/** A loaded issuer that can sign: its record, parsed certificate and private key. */
export interface LoadedIssuer extends CertificateSigner {
  record: IssuerRecord;
  certificate: x509.X509Certificate;
  /** The private key for WebCrypto; absent when a transit key signs for the issuer. */
  privateKey?: SigningKey;
}

/**
 * The mount's issuers and CA keys: records at `issuers/<id>` and
 * `keys/<id>`, the default issuer at `config/issuers`. Issuer certificates
 * are parsed once and private keys imported once (see `IssuerKeys`), and
 * both are cached for the life of this object, which the engine rebuilds
 * at every unseal.
 */
export class IssuerRegistry {
  readonly #store: PkiStore;
  readonly #clock: () => Date;
  readonly #keys: IssuerKeys;
  readonly #certificates = new CaCertificateCache();

  constructor(store: PkiStore, clock: () => Date, transit?: TransitResolver) {
    this.#store = store;
    this.#clock = clock;
    this.#keys = new IssuerKeys(transit);
  }

  async config(): Promise<IssuersConfig> {
    return (
      (await this.#store.get<IssuersConfig>("config/issuers")) ?? {
        defaultIssuerId: "",
        defaultFollowsLatestIssuer: false,
      }
    );
  }

  async setConfig(changes: Partial<IssuersConfig>): Promise<IssuersConfig> {
    return this.#store.withLock("config/issuers", async () => {
      const updated = { ...(await this.config()), ...changes };
      if (changes.defaultIssuerId !== undefined) {
        updated.defaultIssuerId = (await this.resolve(changes.defaultIssuerId, "default")).id;
      }
      await this.#store.put("config/issuers", updated);
      return updated;
    });
  }

  async list(): Promise<IssuerRecord[]> {
    const ids = await this.#store.list("issuers");
    const records = await Promise.all(
      ids.map((id) => this.#store.get<IssuerRecord>(`issuers/${id}`)),
    );
    return records.filter((record): record is IssuerRecord => record !== undefined);
  }

  /** Finds an issuer by `default`, id or name; throws `not_found` naming `field` when none matches. */
  async resolve(ref: string, field = "issuer_ref"): Promise<IssuerRecord> {
    let id = ref;
    if (ref === "default" || ref === "") {
      id = (await this.config()).defaultIssuerId;
      if (id === "") {
        throw new KeywardError(
          "not_found",
          "this mount has no default issuer; generate or import a CA first",
          {
            field,
          },
        );
      }
    }
    const byId = await this.#store.get<IssuerRecord>(`issuers/${id}`);
    if (byId) return byId;
    const byName = (await this.list()).find((issuer) => issuer.name !== "" && issuer.name === ref);
    if (byName) return byName;
    throw new KeywardError("not_found", `issuer "${ref}" not found`, { field });
  }

  async keys(): Promise<KeyRecord[]> {
    const ids = await this.#store.list("keys");
    const records = await Promise.all(ids.map((id) => this.#store.get<KeyRecord>(`keys/${id}`)));
    return records.filter((record): record is KeyRecord => record !== undefined);
  }

  async key(id: string): Promise<KeyRecord | undefined> {
    return this.#store.get<KeyRecord>(`keys/${id}`);
  }

  /** Stores a new CA key. A key whose public key is already stored is not stored twice. */
  async addKey(
    pkcs8: Uint8Array,
    spec: KeySpec,
    options: { name?: string; exported: boolean },
  ): Promise<KeyRecord> {
    validateObjectName(options.name ?? "", "key_name");
    const spki = publicKeyOf(pkcs8);
    const existing = await this.keyForPublicKey(spki);
    if (existing) return existing;
    return this.#withNameLock(NAMED.key, options.name ?? "", async () => {
      rejectListedName(NAMED.key, options.name ?? "", await this.keys());
      const record = this.#newKey(pkcs8, spec, options);
      await this.#store.transaction((tx) => writeKey(tx, record));
      return record;
    });
  }

  /**
   * Returns the stored key whose public key is `spki`, if any. Keys are
   * compared in canonical form, so a compressed EC point matches the
   * stored key's uncompressed one.
   */
  async keyForPublicKey(spki: Uint8Array): Promise<KeyRecord | undefined> {
    return (await this.keysByPublicKey()).get(canonicalPublicKey(spki));
  }

  /** Returns the stored keys that have a private key, by `canonicalPublicKey` of their public key. */
  async keysByPublicKey(): Promise<Map<string, KeyRecord>> {
    const byPublicKey = new Map<string, KeyRecord>();
    for (const key of await this.keys()) {
      if (!key.pkcs8) continue;
      const publicKey = canonicalPublicKey(publicKeyOf(Buffer.from(key.pkcs8, "base64")));
      if (!byPublicKey.has(publicKey)) byPublicKey.set(publicKey, key);
    }
    return byPublicKey;
  }

  /**
   * Stores a CA certificate as a new issuer, linked to the stored key that
   * matches its public key, if any. A certificate already stored returns the
   * existing issuer. The first issuer of a mount becomes its default, and so
   * does every new one while `default_follows_latest_issuer` is set.
   */
  async addIssuer(
    certificate: x509.X509Certificate,
    options: { name?: string; chainPems?: string[]; transitKey?: TransitKeyRef } = {},
  ): Promise<{ issuer: IssuerRecord; created: boolean }> {
    validateObjectName(options.name ?? "", "issuer_name");
    const pem = toPem(certificate.rawData, "CERTIFICATE");
    const all = await this.list();
    const existing = all.find((issuer) => issuer.certificatePem === pem);
    if (existing) {
      // A certificate imported alone can sign once its key is imported too.
      if (existing.keyId === "") {
        const key = await this.keyForPublicKey(
          certificateNames(new Uint8Array(certificate.rawData)).spki,
        );
        if (key) {
          const linked = { ...existing, keyId: key.id };
          await this.#store.put(`issuers/${existing.id}`, linked);
          return { issuer: linked, created: false };
        }
      }
      return { issuer: existing, created: false };
    }
    const names = certificateNames(new Uint8Array(certificate.rawData));
    checkCaPublicKey(names.spki, "certificate", '"certificate"');
    const key = await this.keyForPublicKey(names.spki);
    const record = this.#newIssuer(certificate, pem, options, key);
    await this.#withNameLock(NAMED.issuer, record.name, async () => {
      rejectListedName(NAMED.issuer, record.name, await this.list());
      await this.#store.transaction((tx) => writeIssuer(tx, record));
    });
    await this.#becomeDefaultIfDue(record);
    return { issuer: record, created: true };
  }

  /**
   * Stores the checked keys and CA certificates of one import bundle in
   * one transaction, so a rejected import stores nothing (see
   * `planBundleImport` for what is stored). When `firstNeedsKey` names a
   * field, the import is rejected unless the first certificate gets a
   * key. The default issuer changes after the commit, as in `addIssuer`.
   */
  async importBundleRecords(
    keys: readonly ImportedKey[],
    certificates: readonly ImportedCertificate[],
    firstNeedsKey?: string,
  ): Promise<BundleImport> {
    const plan = await this.#store.withLock("issuers/import", async () => {
      const plan = planBundleImport(keys, certificates, {
        keysByPublicKey: await this.keysByPublicKey(),
        issuers: await this.list(),
        newKey: (key) => this.#newKey(key.pkcs8, key.spec, { exported: true }),
        newIssuer: (certificate, key) =>
          this.#newIssuer(
            certificate.certificate,
            certificate.pem,
            { chainPems: certificate.chainPems },
            key,
          ),
        publicKeyOf: (issuer) =>
          canonicalPublicKey(this.#certificates.parse(issuer.certificatePem).names.spki),
      });
      if (firstNeedsKey !== undefined && plan.issuers[0]?.record.keyId === "") {
        throw new KeywardError(
          "invalid_request",
          `the first certificate in "${firstNeedsKey}" does not match a key generated by intermediate/generate on this mount`,
          { field: firstNeedsKey },
        );
      }
      await this.#store.transaction(async (tx) => {
        for (const { record, created } of plan.keys) if (created) await writeKey(tx, record);
        for (const record of plan.issuerWrites) await writeIssuer(tx, record);
      });
      return plan;
    });
    await this.#becomeDefaultAfterImport(
      plan.issuers.filter((issuer) => issuer.created).map((issuer) => issuer.record),
    );
    return { keys: plan.keys, issuers: plan.issuers };
  }

  /**
   * Makes the first of the issuers an import created the default when the
   * mount has none, or the last one when the default follows the latest issuer.
   */
  async #becomeDefaultAfterImport(created: readonly IssuerRecord[]): Promise<void> {
    const first = created[0];
    const last = created.at(-1);
    if (!first || !last) return;
    const config = await this.config();
    if (config.defaultFollowsLatestIssuer) {
      await this.#store.put("config/issuers", { ...config, defaultIssuerId: last.id });
    } else if (config.defaultIssuerId === "") {
      await this.#store.put("config/issuers", { ...config, defaultIssuerId: first.id });
    }
  }

  /**
   * Stores a newly generated root CA: its key, and its self-signed
   * certificate as a new issuer linked to that key, in one transaction.
   * When the key name or the issuer name is taken, neither is stored, so
   * no stored key keeps the rejected request's key name. The issuer
   * becomes the default as in `addIssuer`.
   */
  async addGeneratedRoot(
    pkcs8: Uint8Array,
    spec: KeySpec,
    certificate: x509.X509Certificate,
    options: { keyName?: string; issuerName?: string; exported: boolean },
  ): Promise<{ key: KeyRecord; issuer: IssuerRecord }> {
    validateObjectName(options.keyName ?? "", "key_name");
    validateObjectName(options.issuerName ?? "", "issuer_name");
    const key = this.#newKey(pkcs8, spec, { name: options.keyName, exported: options.exported });
    const pem = toPem(certificate.rawData, "CERTIFICATE");
    const issuer = this.#newIssuer(certificate, pem, { name: options.issuerName }, key);
    // Every caller takes the key name's lock before the issuer name's, so no two wait for each other.
    await this.#withNameLock(NAMED.key, key.name, () =>
      this.#withNameLock(NAMED.issuer, issuer.name, async () => {
        rejectListedName(NAMED.key, key.name, await this.keys());
        rejectListedName(NAMED.issuer, issuer.name, await this.list());
        await this.#store.transaction(async (tx) => {
          await writeKey(tx, key);
          await writeIssuer(tx, issuer);
        });
      }),
    );
    await this.#becomeDefaultIfDue(issuer);
    return { key, issuer };
  }

  #newKey(pkcs8: Uint8Array, spec: KeySpec, options: { name?: string; exported: boolean }) {
    return {
      id: randomUUID(),
      name: options.name ?? "",
      type: spec.type,
      bits: spec.bits,
      pkcs8: Buffer.from(pkcs8).toString("base64"),
      exported: options.exported,
      createdAt: this.#clock().toISOString(),
    } satisfies KeyRecord;
  }

  #newIssuer(
    certificate: x509.X509Certificate,
    pem: string,
    options: { name?: string; chainPems?: string[]; transitKey?: TransitKeyRef },
    key: KeyRecord | undefined,
  ): IssuerRecord {
    return {
      id: randomUUID(),
      name: options.name ?? "",
      keyId: key?.id ?? "",
      certificatePem: pem,
      chainPems: options.chainPems ?? [],
      serialHex: serialHexOf(certificate),
      notAfter: certificate.notAfter.toISOString(),
      leafNotAfterBehavior: "err",
      createdAt: this.#clock().toISOString(),
      ...(options.transitKey && !key ? { transitKey: options.transitKey } : {}),
    };
  }

  /**
   * Runs `work` while holding this node's lock of `name`, so that this
   * node's requests for one name wait for each other instead of failing
   * each other's transactions. The claim alone keeps the name unique
   * across nodes. An empty name takes no lock.
   */
  #withNameLock<T>(named: Named, name: string, work: () => Promise<T>): Promise<T> {
    return name === "" ? work() : this.#store.withLock(`${named.claims}/${name}`, work);
  }

  /** Makes a new issuer the default when the mount has none, or when the default follows the latest issuer. */
  async #becomeDefaultIfDue(issuer: IssuerRecord): Promise<void> {
    const config = await this.config();
    if (config.defaultIssuerId === "" || config.defaultFollowsLatestIssuer) {
      await this.#store.put("config/issuers", { ...config, defaultIssuerId: issuer.id });
    }
  }

  async updateIssuer(
    ref: string,
    changes: { name?: string; leafNotAfterBehavior?: LeafNotAfterBehavior },
  ): Promise<IssuerRecord> {
    const issuer = await this.resolve(ref, "issuer_ref");
    return this.#store.withLock(`issuers/${issuer.id}`, async () => {
      const current = (await this.#store.get<IssuerRecord>(`issuers/${issuer.id}`)) ?? issuer;
      if (changes.name !== undefined) validateObjectName(changes.name, "issuer_name");
      const updated: IssuerRecord = {
        ...current,
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.leafNotAfterBehavior !== undefined
          ? { leafNotAfterBehavior: changes.leafNotAfterBehavior }
          : {}),
      };
      const renamed = updated.name !== current.name;
      await this.#withNameLock(NAMED.issuer, renamed ? updated.name : "", async () => {
        if (renamed) rejectListedName(NAMED.issuer, updated.name, await this.list(), current.id);
        await this.#store.transaction(async (tx) => {
          if (renamed) {
            await releaseObjectName(tx, NAMED.issuer, current.name, current.id);
            await claimObjectName(tx, NAMED.issuer, updated.name, current.id);
          }
          await tx.put(`issuers/${current.id}`, updated);
        });
      });
      return updated;
    });
  }

  async deleteIssuer(ref: string): Promise<void> {
    const issuer = await this.resolve(ref, "issuer_ref");
    await this.#store.transaction(async (tx) => {
      await releaseObjectName(tx, NAMED.issuer, issuer.name, issuer.id);
      await tx.delete(`issuers/${issuer.id}`);
    });
    const config = await this.config();
    if (config.defaultIssuerId === issuer.id) {
      await this.#store.put("config/issuers", { ...config, defaultIssuerId: "" });
    }
  }

  /** Loads an issuer with its signing key, throwing `invalid_state` when Keyward has no key for it. */
  async load(issuer: IssuerRecord): Promise<LoadedIssuer> {
    const parsed = this.#certificates.parse(issuer.certificatePem);
    const keyRecord = issuer.keyId ? await this.key(issuer.keyId) : undefined;
    const key = await this.#keys.keyFor(issuer, keyRecord, parsed.names.spki);
    return {
      record: issuer,
      certificate: parsed.certificate,
      subjectDer: parsed.names.subject,
      keyIdHex: await parsed.keyIdHex,
      ...key,
    };
  }

  /**
   * Loads an issuer to sign a certificate with. Throws `invalid_state` when
   * the issuer was revoked, or when its usage lacks `issuing-certificates`
   * (a phased rotation retired it, or prepared it and has not switched to
   * it yet). CRLs and OCSP responses use `load`, so such an issuer still
   * signs those.
   */
  async loadForIssuing(issuer: IssuerRecord): Promise<LoadedIssuer> {
    if (issuer.revokedAt !== undefined) {
      throw new KeywardError(
        "invalid_state",
        `issuer "${issuer.name || issuer.id}" was revoked, so it may not issue certificates; use another issuer`,
        { field: "issuer_ref" },
      );
    }
    if (!issuerUsage(issuer).includes("issuing-certificates")) {
      throw new KeywardError(
        "invalid_state",
        `issuer "${issuer.name || issuer.id}" may not issue certificates, because a rotation retired it or has not switched to it yet; use the default issuer`,
        { field: "issuer_ref" },
      );
    }
    return this.load(issuer);
  }

  /**
   * Returns the issuer of this mount that signed `issuer`'s certificate:
   * another issuer whose subject equals its issuer name and whose key
   * verifies its signature. Returns undefined for a self-signed issuer and
   * for one whose parent is not in the mount.
   */
  async parentOf(issuer: IssuerRecord): Promise<IssuerRecord | undefined> {
    const others = (await this.list()).filter((candidate) => candidate.id !== issuer.id);
    return this.#parentAmong(issuer, others);
  }

  async #parentAmong(
    child: IssuerRecord,
    candidates: IssuerRecord[],
  ): Promise<IssuerRecord | undefined> {
    const names = this.#certificates.parse(child.certificatePem).names;
    for (const candidate of candidates) {
      if (candidate.certificatePem === child.certificatePem) continue;
      const candidateNames = this.#certificates.parse(candidate.certificatePem).names;
      if (!Buffer.from(candidateNames.subject).equals(Buffer.from(names.issuer))) continue;
      if (await this.#certificates.verifies(child.certificatePem, candidate.certificatePem)) {
        return candidate;
      }
    }
    return undefined;
  }

  /**
   * Returns an issuer's chain as PEM, the issuer's own certificate first.
   * Each parent is an issuer of the mount whose subject equals the child's
   * issuer name and whose key verifies the child's signature. When no
   * parent is found, the chain stored at import completes the list.
   */
  async chain(issuer: IssuerRecord): Promise<string[]> {
    const all = await this.list();
    const chain = [issuer.certificatePem];
    let current = issuer;
    for (let depth = 0; depth < 10; depth++) {
      const names = this.#certificates.parse(current.certificatePem).names;
      if (
        Buffer.from(names.issuer).equals(Buffer.from(names.subject)) &&
        (await this.#certificates.verifies(current.certificatePem, current.certificatePem))
      ) {
        return chain;
      }
      const parent = await this.#parentAmong(
        current,
        all.filter((candidate) => !chain.includes(candidate.certificatePem)),
      );
      if (!parent) return [...chain, ...current.chainPems.filter((pem) => !chain.includes(pem))];
      chain.push(parent.certificatePem);
      current = parent;
    }
    return chain;
  }
}

export { pemDer, subjectKeyIdOf } from "./ca-certificates.ts";
