import { timingSafeEqual } from "node:crypto";
import { invalidField } from "../errors.ts";
import { decodeRootKeyShare } from "./root-key.ts";
import type { SealConfig } from "./seal-config.ts";
import { ShareCollector } from "./share-collector.ts";
import type { InitResult } from "./types.ts";

/** The new secret of a rekey, split into the new shares and not stored yet. */
export interface NewShares {
  /** The seal configuration to store when the new shares take effect. */
  config: SealConfig;
  /** The new shares to hand out. */
  result: InitResult;
  /** The secret the new shares rebuild: the new root key (Shamir seal) or recovery key (PKCS#11 seal). */
  secret: Buffer;
}

/**
 * One rekey in progress, held only in memory: the requested counts, the
 * current shares submitted so far and, when verification is required, the
 * new shares that wait for it. `clear()` zeroes every share and the new secret.
 */
export class RekeyAttempt {
  readonly shares: number;
  readonly threshold: number;
  readonly requireVerification: boolean;
  /** The current shares submitted so far; its nonce identifies the rekey. */
  readonly currentShares = new ShareCollector();
  #verification: RekeyVerification | undefined;

  constructor(shares: number, threshold: number, requireVerification: boolean) {
    this.shares = shares;
    this.threshold = threshold;
    this.requireVerification = requireVerification;
  }

  get nonce(): string {
    return this.currentShares.nonce;
  }

  /** The new shares that wait for verification; undefined until the current shares are complete. */
  get verification(): RekeyVerification | undefined {
    return this.#verification;
  }

  /**
   * Keeps `created` until `threshold` of its shares are submitted back.
   * Takes ownership of `created.secret`. `replaced` is the configuration
   * whose shares authorised the rekey.
   */
  awaitVerification(created: NewShares, replaced: SealConfig): RekeyVerification {
    this.#verification = new RekeyVerification(created, replaced);
    return this.#verification;
  }

  clear(): void {
    this.currentShares.clear();
    this.#verification?.clear();
    this.#verification = undefined;
  }
}

/**
 * New shares that are issued but not in force: they take effect once a
 * threshold of them is submitted back and rebuilds the new secret. Until
 * then the stored configuration and the current shares stay as they are.
 */
export class RekeyVerification {
  readonly created: NewShares;
  /** The seal configuration whose shares authorised the rekey; the commit replaces it. */
  readonly replaced: SealConfig;
  /** The new shares, decoded, to recognise a submitted one. */
  readonly #issued: Buffer[];
  #submitted = new ShareCollector();

  constructor(created: NewShares, replaced: SealConfig) {
    this.created = created;
    this.replaced = replaced;
    this.#issued = created.result.keysHex.map((share) => decodeRootKeyShare(share, created.config));
  }

  /** Identifies this verification; a reset replaces it. */
  get nonce(): string {
    return this.#submitted.nonce;
  }

  get progress(): number {
    return this.#submitted.progress;
  }

  /**
   * Decodes and adds one new share. Throws `invalid_field` on `key` for a
   * malformed share, a share this rekey did not issue (such as a current
   * one), and a share already submitted in this verification.
   */
  add(share: string): void {
    const decoded = decodeRootKeyShare(share, this.created.config);
    let issued = false;
    // Compare with every issued share, so the time taken does not depend on which one matches.
    for (const candidate of this.#issued) {
      if (candidate.length === decoded.length && timingSafeEqual(candidate, decoded)) issued = true;
    }
    if (!issued) {
      decoded.fill(0);
      throw invalidField(
        "key",
        "this key is not one of the new shares issued by the rekey: submit the new shares, not the current ones",
      );
    }
    this.#submitted.add(decoded);
  }

  /** Removes and returns the submitted shares; the caller zeroes them after use. */
  take(): Buffer[] {
    return this.#submitted.take();
  }

  /** True when `secret`, rebuilt from submitted shares, is the new secret. Does not zero it. */
  matches(secret: Buffer): boolean {
    const expected = this.created.secret;
    return secret.length === expected.length && timingSafeEqual(secret, expected);
  }

  /** Starts the verification over with a new nonce and no shares; the new shares stay issued. */
  reset(): void {
    this.#submitted.clear();
    this.#submitted = new ShareCollector();
  }

  clear(): void {
    this.#submitted.clear();
    for (const share of this.#issued) share.fill(0);
    this.created.secret.fill(0);
  }
}
