import { KeywardError } from "../../errors.ts";
import type { PkiStore } from "./store.ts";
import type { CrlConfig, TidyConfig, UrlsConfig } from "./types.ts";

export const URLS_DEFAULTS: UrlsConfig = {
  issuingCertificates: [],
  crlDistributionPoints: [],
  ocspServers: [],
};

/** Vault's CRL defaults: 72-hour CRLs, rebuilt on revocation only. */
export const CRL_DEFAULTS: CrlConfig = {
  expirySeconds: 72 * 3600,
  disable: false,
  autoRebuild: false,
  autoRebuildGraceSeconds: 12 * 3600,
  enableDelta: false,
  deltaRebuildIntervalSeconds: 15 * 60,
  ocspDisable: false,
  ocspExpirySeconds: 12 * 3600,
};

/** Vault's auto-tidy defaults: off, every 12 hours, a 72-hour safety buffer. */
export const TIDY_DEFAULTS: TidyConfig = {
  enabled: false,
  intervalSeconds: 12 * 3600,
  tidyCertStore: false,
  tidyRevokedCerts: false,
  safetyBufferSeconds: 72 * 3600,
};

/** Reads and merges the mount's `config/urls`, `config/crl` and `config/auto-tidy` records. */
export class PkiConfig {
  readonly #store: PkiStore;

  constructor(store: PkiStore) {
    this.#store = store;
  }

  async urls(): Promise<UrlsConfig> {
    return { ...URLS_DEFAULTS, ...(await this.#store.get<Partial<UrlsConfig>>("config/urls")) };
  }

  async crl(): Promise<CrlConfig> {
    return { ...CRL_DEFAULTS, ...(await this.#store.get<Partial<CrlConfig>>("config/crl")) };
  }

  async tidy(): Promise<TidyConfig> {
    return {
      ...TIDY_DEFAULTS,
      ...(await this.#store.get<Partial<TidyConfig>>("config/auto-tidy")),
    };
  }

  async setUrls(changes: Partial<UrlsConfig>): Promise<UrlsConfig> {
    for (const [field, urls] of Object.entries({
      issuing_certificates: changes.issuingCertificates,
      crl_distribution_points: changes.crlDistributionPoints,
      ocsp_servers: changes.ocspServers,
    })) {
      for (const url of urls ?? []) {
        if (!URL.canParse(url)) {
          throw new KeywardError(
            "invalid_field",
            `"${field}" contains "${url}", which is not a URL`,
            { field },
          );
        }
      }
    }
    return this.#write("config/urls", await this.urls(), changes);
  }

  async setCrl(changes: Partial<CrlConfig>): Promise<CrlConfig> {
    return this.#write("config/crl", await this.crl(), changes);
  }

  async setTidy(changes: Partial<TidyConfig>): Promise<TidyConfig> {
    return this.#write("config/auto-tidy", await this.tidy(), changes);
  }

  async #write<T extends object>(path: string, current: T, changes: Partial<T>): Promise<T> {
    return this.#store.withLock(path, async () => {
      const defined = Object.fromEntries(
        Object.entries(changes).filter(([, value]) => value !== undefined),
      );
      const updated = { ...current, ...defined } as T;
      await this.#store.put(path, updated);
      return updated;
    });
  }
}
