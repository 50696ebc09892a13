import { randomBytes, randomUUID } from "node:crypto";
import { invalidField, KeywardError } from "../errors.ts";
import type { SealManager } from "../seal/types.ts";
import { Mutex } from "../util/mutex.ts";
import { generateToken, TOKEN_LENGTH, type TokenStore } from "./token-store.ts";

const BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** Bytes at or above this are discarded so that `byte % 62` is uniform (248 = 4 * 62). */
const BASE62_REJECTION_LIMIT = 248;

/** Progress of a root token generation, as `/v1/sys/generate-root/attempt` reports it. */
export interface RootGenerationStatus {
  started: boolean;
  nonce: string;
  /** Shares submitted so far in this attempt. */
  progress: number;
  /** Shares needed: the unseal threshold. */
  required: number;
  /** Length of the OTP, equal to the length of the token it encodes. */
  otpLength: number;
  /** The OTP, only in the response that starts the attempt. */
  otp?: string;
  complete: boolean;
  /** Once complete: the new root token XORed with the OTP, in unpadded base64. */
  encodedToken: string;
}

interface Attempt {
  nonce: string;
  otp: string;
  shares: string[];
}

/** Returns a random base62 string of `length` characters, as Vault's OTPs are. */
export function generateOtp(length: number): string {
  let otp = "";
  while (otp.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < BASE62_REJECTION_LIMIT && otp.length < length) {
        otp += BASE62_ALPHABET[byte % BASE62_ALPHABET.length];
      }
    }
  }
  return otp;
}

function xorBytes(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError("XOR operands must have the same length");
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/**
 * Encodes a token with an OTP of the same length as Vault does: the
 * token's bytes XOR the OTP's bytes, in standard base64 without padding.
 */
export function encodeRootToken(token: string, otp: string): string {
  return xorBytes(Buffer.from(token, "utf8"), Buffer.from(otp, "utf8"))
    .toString("base64")
    .replace(/=+$/, "");
}

/** Reverses `encodeRootToken`, as `vault operator generate-root -decode` does. */
export function decodeRootToken(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, "base64");
  if (bytes.length !== Buffer.byteLength(otp, "utf8")) {
    throw invalidField("encoded_token", "the encoded token and the OTP differ in length");
  }
  return xorBytes(bytes, Buffer.from(otp, "utf8")).toString("utf8");
}

/**
 * Generates a new root token once a quorum of unseal share holders agree,
 * with Vault's OTP flow. Starting an attempt returns a random OTP, and
 * holders then submit shares with the attempt's nonce. When the shares
 * rebuild the root key, a new root token is stored and returned only XORed
 * with the OTP, so the holder of the last share cannot read it without the
 * OTP.
 *
 * Shares are kept as submitted (strings, which JavaScript cannot zero)
 * until the threshold is reached or the attempt ends, and sealing ends it.
 */
export class RootTokenGenerator {
  readonly #seal: SealManager;
  readonly #tokens: TokenStore;
  readonly #mutex = new Mutex();
  #attempt: Attempt | undefined;

  constructor(seal: SealManager, tokens: TokenStore) {
    this.#seal = seal;
    this.#tokens = tokens;
    seal.onChange((sealed) => {
      if (sealed) this.#attempt = undefined;
    });
  }

  /** Reports the attempt in progress, or an idle status. */
  status(): Promise<RootGenerationStatus> {
    return this.#mutex.run(() => this.#status());
  }

  /**
   * Starts an attempt and returns its OTP, once. Throws `invalid_state`
   * when one is in progress and `sealed` while sealed.
   */
  start(): Promise<RootGenerationStatus> {
    return this.#mutex.run(async () => {
      await this.#requireUnsealed();
      if (this.#attempt !== undefined) {
        throw new KeywardError(
          "invalid_state",
          "a root token generation is already in progress: finish or cancel it before starting another",
        );
      }
      const attempt = { nonce: randomUUID(), otp: generateOtp(TOKEN_LENGTH), shares: [] };
      this.#attempt = attempt;
      return { ...(await this.#status()), otp: attempt.otp };
    });
  }

  /**
   * Adds one unseal share (hex or base64) and checks the shares at the
   * threshold. When they rebuild the root key, a root token is created and
   * the attempt ends with it encoded. Otherwise progress resets, the attempt
   * stays open and `invalid_shares` is thrown. A malformed or repeated
   * share throws `invalid_field` and is not counted.
   */
  update(share: string, nonce: string): Promise<RootGenerationStatus> {
    return this.#mutex.run(async () => {
      const attempt = this.#attempt;
      if (attempt === undefined) {
        throw new KeywardError(
          "invalid_state",
          "no root token generation is in progress: start one first",
        );
      }
      if (nonce !== attempt.nonce) {
        throw invalidField(
          "nonce",
          "the nonce does not match the root token generation in progress",
        );
      }

      const shares = [...attempt.shares, share];
      const verified = await this.#seal.verifyShares(shares);
      const required = (await this.#seal.status()).threshold;
      if (shares.length < required) {
        attempt.shares = shares;
        return this.#status();
      }

      attempt.shares = [];
      if (!verified) {
        throw new KeywardError(
          "invalid_shares",
          "the submitted unseal key shares do not rebuild the root key, so the root token generation's progress was reset; submit the shares again",
        );
      }
      const token = await this.#tokens.createRootToken(generateToken());
      this.#attempt = undefined;
      // Vault's final response still reports the attempt as started.
      return {
        started: true,
        nonce: attempt.nonce,
        progress: shares.length,
        required,
        otpLength: TOKEN_LENGTH,
        complete: true,
        encodedToken: encodeRootToken(token, attempt.otp),
      };
    });
  }

  /** Ends the attempt in progress, if any, and drops its shares. */
  cancel(): Promise<void> {
    return this.#mutex.run(async () => {
      this.#attempt = undefined;
    });
  }

  async #requireUnsealed(): Promise<void> {
    const status = await this.#seal.status();
    if (!status.initialized) {
      throw new KeywardError(
        "not_initialized",
        "the server is not initialised: initialise it first",
      );
    }
    if (status.sealed) {
      throw new KeywardError("sealed", "the server is sealed: unseal it with its key shares first");
    }
  }

  async #status(): Promise<RootGenerationStatus> {
    const attempt = this.#attempt;
    return {
      started: attempt !== undefined,
      nonce: attempt?.nonce ?? "",
      progress: attempt?.shares.length ?? 0,
      required: (await this.#seal.status()).threshold,
      otpLength: TOKEN_LENGTH,
      complete: false,
      encodedToken: "",
    };
  }
}
