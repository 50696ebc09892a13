import type { StorageWriter, TransactionOptions } from "../storage/storage.ts";
import type { SealType } from "./seal-config.ts";

/**
 * The barrier: the only way the rest of Keyward reaches storage.
 *
 * It has the storage interface, but its values are plaintext: the barrier
 * encrypts each value with the active AES-256-GCM barrier key before it
 * reaches storage and decrypts it on the way back, binding the storage key
 * as associated data so a value cannot be moved to another key. Every call
 * throws a `KeywardError` with code `sealed` while the server is sealed.
 */
export interface Barrier extends StorageWriter {
  /** True while the barrier is closed; every call then throws `sealed`. */
  readonly sealed: boolean;
  /** Runs `work` in one storage transaction, with the same contract as `Storage.transaction`. */
  transaction<T>(work: (tx: StorageWriter) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

/** The seal state, as `/v1/sys/seal-status` reports it. */
export interface SealStatus {
  initialized: boolean;
  sealed: boolean;
  /** Shares needed to unseal (recovery shares with a PKCS#11 seal). 0 before initialisation. */
  threshold: number;
  /** Shares issued at initialisation or the last rekey. 0 before initialisation. */
  shares: number;
  /** Shares submitted so far towards the current unseal. */
  progress: number;
  /** Identifies the unseal attempt in progress; empty when none is. */
  nonce: string;
  /** The storage backend's kind. */
  storageType: string;
}

export interface InitRequest {
  shares: number;
  threshold: number;
}

export interface InitResult {
  /**
   * The shares issued, each hex-encoded: unseal key shares with a Shamir
   * seal, recovery key shares with a PKCS#11 seal. Shown once, never stored.
   */
  keysHex: string[];
  /** The same shares, base64-encoded. */
  keysBase64: string[];
}

/** The barrier keyring's state, as `/v1/sys/key-status` reports it. */
export interface KeyStatus {
  /** The active barrier key's term; each rotation adds one. */
  term: number;
  /** When the active term was installed (ISO 8601). */
  installTime: string;
  /** How many values the active term has encrypted since it was installed. */
  encryptions: number;
}

export interface RekeyRequest extends InitRequest {
  /**
   * When true, the new shares take effect only after a threshold of them
   * is submitted back with `rekeyVerifyUpdate`. Until then the current
   * shares stay in force.
   */
  requireVerification?: boolean;
}

/** Progress of a rekey (new unseal shares), as `/v1/sys/rekey/init` and `/v1/sys/rekey/update` report it. */
export interface RekeyStatus {
  started: boolean;
  nonce: string;
  /** Old shares submitted so far. */
  progress: number;
  /** Old shares required. */
  required: number;
  /** The new share count and threshold requested. */
  shares: number;
  threshold: number;
  /** Whether the rekey was started with `requireVerification`. */
  verificationRequired: boolean;
  /** Identifies the verification of the new shares once it has begun; empty before. */
  verificationNonce: string;
  /**
   * Present once the old shares are complete: the new shares, shown once.
   * They are in force at once, or after verification when it is required.
   */
  complete?: InitResult;
}

/** Progress of the verification of a rekey's new shares, as `/v1/sys/rekey/verify` reports it. */
export interface RekeyVerificationStatus {
  /** True while new shares wait for verification. */
  started: boolean;
  /** Identifies the verification; a reset changes it. */
  nonce: string;
  /** New shares submitted so far. */
  progress: number;
  /** The new share count and threshold. */
  shares: number;
  threshold: number;
  /** True once the new shares were verified and stored; the current shares then no longer work. */
  complete: boolean;
}

/**
 * Owns the root key, its shares and the barrier keyring.
 *
 * With a Shamir seal the root key is split into shares at initialisation
 * and never stored whole. It is rebuilt in memory from `threshold` shares
 * at unseal and dropped at seal. With a PKCS#11 seal the root key is stored
 * wrapped by a key in the HSM, and the shares are of a separate recovery
 * key. Either way the root key encrypts the keyring of barrier keys, which
 * encrypts everything else.
 */
export interface SealManager {
  readonly barrier: Barrier;
  /** The seal type this manager runs; storage initialised with another type is rejected with `seal_mismatch`. */
  readonly type: SealType;
  status(): Promise<SealStatus>;
  /**
   * Creates the root key and keyring and returns the shares. Leaves the
   * server sealed. With `whileOpen`, it first opens the barrier with the new
   * root key, runs `whileOpen` and seals again, and deletes what it stored
   * when that fails.
   */
  init(request: InitRequest, whileOpen?: () => Promise<void>): Promise<InitResult>;
  /**
   * Adds one share (hex or base64) towards unsealing. When enough shares are
   * in, the barrier opens: with a Shamir seal they rebuild the root key,
   * with a PKCS#11 seal they must rebuild the recovery key, and the root key
   * comes from the HSM. A wrong set of shares fails with `invalid_shares`
   * and resets progress.
   */
  submitUnsealShare(share: string): Promise<SealStatus>;
  /**
   * Unseals without shares, with the root key that the seal's HSM unwraps.
   * Present only on seals that can do so (PKCS#11). Does nothing before
   * initialisation or while unsealed.
   */
  autoUnseal?(): Promise<SealStatus>;
  /** Discards the shares submitted so far. */
  resetUnseal(): Promise<SealStatus>;
  /** Drops the root key, the keyring and any rekey in progress from memory; the barrier closes. */
  seal(): Promise<void>;
  /** Adds a new barrier key; new writes use it, old values stay readable. */
  rotate(): Promise<KeyStatus>;
  keyStatus(): Promise<KeyStatus>;
  /**
   * Starts issuing new shares; old shares are collected with `rekeyUpdate`.
   * With a PKCS#11 seal the recovery key is replaced and the root key stays.
   */
  rekeyInit(request: RekeyRequest): Promise<RekeyStatus>;
  /**
   * Adds one current share. The threshold-th share returns the new shares
   * in `complete`. Without verification they are then in force. With
   * verification they wait in memory for `rekeyVerifyUpdate`.
   */
  rekeyUpdate(share: string, nonce: string): Promise<RekeyStatus>;
  rekeyStatus(): Promise<RekeyStatus>;
  /** Drops the rekey in progress, including new shares that wait for verification. */
  rekeyCancel(): Promise<void>;
  /** Reports the verification of the new shares. Throws `invalid_state` when none waits for it. */
  rekeyVerifyStatus(): Promise<RekeyVerificationStatus>;
  /**
   * Adds one new share (hex or base64) towards verification. When a
   * threshold of them rebuilds the new secret, the new shares are stored
   * and the result has `complete: true`. Throws `invalid_state` when no
   * new shares wait for verification, `invalid_field` on `nonce` for
   * another verification's nonce, and `invalid_field` on `key` for a
   * malformed, repeated or foreign share.
   */
  rekeyVerifyUpdate(share: string, nonce: string): Promise<RekeyVerificationStatus>;
  /** Discards the new shares submitted so far and gives the verification a new nonce; the new shares stay issued. */
  rekeyVerifyReset(): Promise<RekeyVerificationStatus>;
  /**
   * Checks whether `shares` (hex or base64) rebuild the current root key
   * (the recovery key with a PKCS#11 seal), for operations that need a
   * quorum of share holders, such as generating a root token. Fewer shares
   * than the threshold return false without combining. Throws `invalid_field` on `key` for a malformed or repeated
   * share, and `sealed` while sealed. Keeps no state between calls.
   */
  verifyShares(shares: string[]): Promise<boolean>;
  /**
   * Re-reads what another node sharing the storage may have changed: the
   * seal configuration (after a rekey there) and the keyring's terms (after
   * a rotation there). A node whose root key was replaced elsewhere seals.
   */
  refresh(): Promise<void>;
  /** Registers a listener called after each unseal and before each seal. */
  onChange(listener: (sealed: boolean) => void | Promise<void>): void;
}
