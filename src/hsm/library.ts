import { existsSync } from "node:fs";
import { resolve } from "node:path";
import pkcs11js from "pkcs11js";
import { describePkcs11Error, hsmUnavailable, returnValueOf } from "./pkcs11-errors.ts";

/** One PKCS#11 library loaded into this process and initialised. */
export interface LoadedLibrary {
  /** The absolute path the library was loaded from. */
  readonly path: string;
  readonly module: pkcs11js.PKCS11;
  /** Drops this user's claim; the last release calls `C_Finalize` and unloads the library. */
  release(): void;
}

interface Entry {
  module: pkcs11js.PKCS11;
  users: number;
}

/**
 * Libraries loaded so far, by absolute path. A library keeps one state per
 * process, whichever object loaded it: a second `C_Initialize` fails with
 * `CKR_CRYPTOKI_ALREADY_INITIALIZED`, and one `C_Finalize` ends every
 * session. So each library is initialised once and finalised after its
 * last user releases it.
 */
const loaded = new Map<string, Entry>();

/**
 * Loads and initialises the PKCS#11 library at `path`, or shares the copy
 * already loaded. Throws `hsm_unavailable` when the file is missing, is
 * not a PKCS#11 library, or `C_Initialize` fails.
 */
export function acquireLibrary(path: string): LoadedLibrary {
  const absolute = resolve(path);
  let entry = loaded.get(absolute);
  if (entry === undefined) {
    entry = { module: loadLibrary(absolute), users: 0 };
    loaded.set(absolute, entry);
  }
  entry.users += 1;
  const claimed = entry;
  let released = false;
  return {
    path: absolute,
    module: claimed.module,
    release() {
      if (released) return;
      released = true;
      claimed.users -= 1;
      if (claimed.users > 0) return;
      loaded.delete(absolute);
      finalise(claimed.module);
    },
  };
}

function loadLibrary(path: string): pkcs11js.PKCS11 {
  if (!existsSync(path)) {
    throw hsmUnavailable(`the PKCS#11 library ${path} does not exist: check the library path`);
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(path);
  } catch (error) {
    throw hsmUnavailable(
      `failed to load the PKCS#11 library ${path}: ${describePkcs11Error(error)}`,
      error,
    );
  }
  try {
    // Operations run on libuv worker threads, so the library must lock for itself.
    module.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (returnValueOf(error) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      closeQuietly(module);
      throw hsmUnavailable(
        `the PKCS#11 library ${path} failed to initialise (C_Initialize: ${describePkcs11Error(error)}); check the library's own configuration, such as SOFTHSM2_CONF for SoftHSM`,
        error,
      );
    }
    // NOTE: another component of this process initialised the library
    // without going through this module; it will be finalised here anyway.
  }
  return module;
}

function finalise(module: pkcs11js.PKCS11): void {
  try {
    module.C_Finalize();
  } catch {
    // The library is being dropped; a failed finalise leaves nothing to do.
  }
  closeQuietly(module);
}

function closeQuietly(module: pkcs11js.PKCS11): void {
  try {
    module.close();
  } catch {
    // Unloading failed; the process keeps the library mapped, which is harmless.
  }
}
