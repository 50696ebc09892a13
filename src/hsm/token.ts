import type { Logger } from "pino";
import pkcs11js from "pkcs11js";
import { KeywardError } from "../errors.ts";
import { Mutex } from "../util/mutex.ts";
import { acquireLibrary, type LoadedLibrary } from "./library.ts";
import {
  describePkcs11Error,
  hsmOperationFailed,
  hsmUnavailable,
  isOperationActive,
  isSessionLost,
  mayLeaveOperationActive,
  returnValueOf,
} from "./pkcs11-errors.ts";

export interface HsmTokenOptions {
  /** Path of the PKCS#11 library (the vendor's `.so`). */
  library: string;
  /** The token's label, as set when the token was initialised. */
  tokenLabel: string;
  /** The user PIN. Kept in memory to log in again after a lost session, never logged. */
  pin: string;
  logger?: Logger;
}

/** The library and the open, logged-in session that an operation runs with. */
export interface SessionContext {
  readonly module: pkcs11js.PKCS11;
  readonly session: Buffer;
}

export interface RunOptions {
  /**
   * Runs `work` once more on a new session when the first attempt finds the
   * session or login lost. Only for work that is safe to repeat: not for
   * key generation, whose first attempt may have created the key.
   */
  retryOnLostSession?: boolean;
}

/**
 * A logged-in session with one token of a PKCS#11 library.
 *
 * A PKCS#11 session runs one operation at a time (`C_EncryptInit` then
 * `C_Encrypt` must not interleave with another operation), so every call
 * runs under a mutex on the one session. The library initialises once per
 * process and is finalised when the last token using it closes.
 */
export class HsmToken {
  readonly tokenLabel: string;
  readonly libraryPath: string;
  readonly #library: LoadedLibrary;
  readonly #pin: string;
  readonly #logger: Logger | undefined;
  readonly #mutex = new Mutex();
  #session: Buffer | undefined;
  #closed = false;

  private constructor(library: LoadedLibrary, options: HsmTokenOptions) {
    this.#library = library;
    this.libraryPath = library.path;
    this.tokenLabel = options.tokenLabel;
    this.#pin = options.pin;
    this.#logger = options.logger;
  }

  /**
   * Loads the library, finds the token by label, opens a read-write session
   * and logs in as the user. Throws `hsm_unavailable` for a missing library
   * or token and `hsm_login_failed` for a wrong or locked PIN.
   */
  static async open(options: HsmTokenOptions): Promise<HsmToken> {
    const library = acquireLibrary(options.library);
    const token = new HsmToken(library, options);
    try {
      await token.#mutex.run(async () => {
        token.#session = token.#openSession();
      });
    } catch (error) {
      library.release();
      throw error;
    }
    return token;
  }

  /** "token "LABEL" of LIBRARY", for messages. */
  get description(): string {
    return `token "${this.tokenLabel}" of ${this.libraryPath}`;
  }

  /**
   * Runs `work` with the session, after every earlier call has finished.
   * Errors that `work` throws pass through unchanged, so `work` maps the
   * library's errors itself.
   */
  run<T>(work: (context: SessionContext) => Promise<T> | T, options: RunOptions = {}): Promise<T> {
    return this.#mutex.run(async () => {
      const context = this.#context();
      try {
        return await work(context);
      } catch (error) {
        const lost = this.#lostSession(error);
        if (!lost && !mayLeaveOperationActive(error)) throw error;
        this.#logger?.warn(
          { err: error, tokenLabel: this.tokenLabel },
          lost
            ? "the HSM session was lost: opening a new session and logging in again"
            : "an HSM call failed with an operation possibly still active: opening a new session",
        );
        this.#closeSessionQuietly();
        this.#session = this.#openSession();
        // A call that failed on its own arguments is not run again; one that found the session busy is.
        const retry = lost || isOperationActive(error);
        if (!retry || options.retryOnLostSession !== true) throw error;
        return await work(this.#context());
      }
    });
  }

  /** Closes the session and releases the library, which is finalised when no other token uses it. */
  close(): Promise<void> {
    return this.#mutex.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      const session = this.#session;
      this.#session = undefined;
      if (session !== undefined) {
        try {
          // Closing the last session also ends the login, so C_Logout is not needed.
          this.#library.module.C_CloseSession(session);
        } catch (error) {
          this.#logger?.warn(
            { err: error, tokenLabel: this.tokenLabel },
            "failed to close the HSM session; the library is finalised anyway",
          );
        }
      }
      this.#library.release();
    });
  }

  #closeSessionQuietly(): void {
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    try {
      this.#library.module.C_CloseSession(session);
    } catch {
      // The session is already gone, which is why it is being replaced.
    }
  }

  #context(): SessionContext {
    if (this.#closed) {
      throw hsmUnavailable(`the connection to ${this.description} is closed`);
    }
    this.#session ??= this.#openSession();
    return { module: this.#library.module, session: this.#session };
  }

  #lostSession(error: unknown): boolean {
    if (isSessionLost(error)) return true;
    return error instanceof KeywardError && error.cause !== undefined && isSessionLost(error.cause);
  }

  #openSession(): Buffer {
    const module = this.#library.module;
    const slot = this.#findSlot();
    let session: Buffer;
    try {
      session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    } catch (error) {
      throw hsmUnavailable(
        `failed to open a session with ${this.description}: ${describePkcs11Error(error)}`,
        error,
      );
    }
    try {
      module.C_Login(session, pkcs11js.CKU_USER, this.#pin);
    } catch (error) {
      // Another session of this process is already logged in to the token.
      if (returnValueOf(error) === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return session;
      try {
        module.C_CloseSession(session);
      } catch {
        // The login error below is the one to report.
      }
      throw this.#loginError(error);
    }
    return session;
  }

  #loginError(error: unknown): KeywardError {
    const code = returnValueOf(error);
    const where = `login to ${this.description} failed`;
    if (code === pkcs11js.CKR_PIN_INCORRECT || code === pkcs11js.CKR_PIN_LEN_RANGE) {
      return new KeywardError(
        "hsm_login_failed",
        `${where}: the user PIN is incorrect; check the PIN file or variable (the token may lock the PIN after repeated failures)`,
        { cause: error },
      );
    }
    if (code === pkcs11js.CKR_PIN_LOCKED || code === pkcs11js.CKR_PIN_EXPIRED) {
      return new KeywardError(
        "hsm_login_failed",
        `${where}: the user PIN is ${code === pkcs11js.CKR_PIN_LOCKED ? "locked" : "expired"}; the token's security officer must reset it`,
        { cause: error },
      );
    }
    if (code === pkcs11js.CKR_USER_PIN_NOT_INITIALIZED) {
      return new KeywardError(
        "hsm_login_failed",
        `${where}: the token has no user PIN yet; initialise it first`,
        { cause: error },
      );
    }
    return new KeywardError("hsm_login_failed", `${where}: ${describePkcs11Error(error)}`, {
      cause: error,
    });
  }

  /** Finds the one slot whose token has this label. Slot numbers may change, labels do not. */
  #findSlot(): Buffer {
    const module = this.#library.module;
    let slots: Buffer[];
    try {
      slots = module.C_GetSlotList(true);
    } catch (error) {
      throw hsmOperationFailed("list its slots", error);
    }
    const labels: string[] = [];
    const matches: Buffer[] = [];
    for (const slot of slots) {
      let label: string;
      try {
        label = module.C_GetTokenInfo(slot).label.trimEnd();
      } catch {
        // An unreadable token is skipped; if it was the configured one, the error below lists the others.
        continue;
      }
      if (label !== "") labels.push(`"${label}"`);
      if (label === this.tokenLabel) matches.push(slot);
    }
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw hsmUnavailable(
        `${matches.length} tokens of ${this.libraryPath} are labelled "${this.tokenLabel}": give each token a unique label`,
      );
    }
    const found = labels.length === 0 ? "no initialised token" : `tokens ${labels.join(", ")}`;
    throw hsmUnavailable(
      `no token labelled "${this.tokenLabel}" in the PKCS#11 library ${this.libraryPath} (it has ${found}): check the token label and that the token is initialised and present`,
    );
  }
}
