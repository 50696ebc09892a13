import {
  createPublicKey,
  type JsonWebKey,
  KeyObject,
  type VerifyKeyObjectInput,
  type VerifyPublicKeyInput,
  verify,
} from "node:crypto";
import { Worker } from "node:worker_threads";

/**
 * Signature checks on a worker thread.
 *
 * Importing a public key costs OpenSSL 3 about as much CPU as the
 * verification itself: about 70 us each for P-256 on the reference
 * machine. node:crypto imports the key on the calling thread, even for the
 * callback form of `verify`, so a CSR check on the event loop held it for
 * about 150 us. The worker imports the key and verifies, so the
 * event loop only copies a few hundred bytes each way, and on a machine
 * with a spare core the checks of concurrent requests run beside it.
 *
 * If the worker cannot be started or stops, the check runs on the calling
 * thread instead, so a worker failure never turns into a wrong result.
 */

/** The key of a check: a JWK for the common forms (cheaper to import), or a key object. */
export type VerifierKey = JsonWebKey | KeyObject;

/** One signature check, as node:crypto's `verify` takes it, with the key given separately. */
export interface VerifyRequest {
  /** The hash name for `verify`, or null where the key type fixes it (Ed25519). */
  algorithm: string | null;
  data: Uint8Array;
  signature: Uint8Array;
  key: VerifierKey;
  /** RSA padding and salt length, or the ECDSA signature encoding. */
  options?: { padding?: number; saltLength?: number; dsaEncoding?: "der" | "ieee-p1363" };
}

interface Reply {
  id: number;
  valid?: boolean;
  error?: string;
}

// The worker runs plain JavaScript given as source text: the server runs
// compiled files and the tests run the TypeScript sources, and a worker
// would need a loader for the second.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { KeyObject, createPublicKey, verify } = require("node:crypto");
parentPort.on("message", (request) => {
  try {
    const key = request.key instanceof KeyObject
      ? request.key
      : createPublicKey({ key: request.key, format: "jwk" });
    const valid = verify(request.algorithm, request.data, { ...request.options, key }, request.signature);
    parentPort.postMessage({ id: request.id, valid });
  } catch (error) {
    parentPort.postMessage({ id: request.id, error: error instanceof Error ? error.message : String(error) });
  }
});
`;

/** Verifies on the calling thread, as the worker does. */
export function verifyHere(request: VerifyRequest): boolean {
  const key =
    request.key instanceof KeyObject
      ? request.key
      : createPublicKey({ key: request.key, format: "jwk" });
  const input: VerifyKeyObjectInput | VerifyPublicKeyInput = { ...request.options, key };
  return verify(request.algorithm, request.data, input, request.signature);
}

/** The error of a check the worker could not complete because the key or signature was unusable. */
export class VerifyError extends Error {
  override readonly name = "VerifyError";
}

interface Pending {
  request: VerifyRequest;
  resolve: (valid: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * A worker thread that checks signatures. It starts on the first check,
 * keeps the process alive only while checks are pending, and is started
 * again after it stops.
 */
export class VerifyPool {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #report: ((error: Error) => void) | undefined;

  /** Sets where a worker that failed or exited unexpectedly is reported, normally the server's log. */
  reportFailuresTo(report: (error: Error) => void): void {
    this.#report = report;
  }

  /** Resolves with whether the signature verifies; rejects with `VerifyError` when the key or signature cannot be used. */
  verify(request: VerifyRequest): Promise<boolean> {
    const worker = this.#ensureWorker();
    if (worker === undefined) return Promise.resolve().then(() => verifyHere(request));
    const id = this.#nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.#pending.set(id, { request, resolve, reject });
      if (this.#pending.size === 1) worker.ref();
      // Copies of exactly the bytes: a view is cloned with its whole
      // ArrayBuffer, which for a pooled Buffer is a shared 8 KiB slab.
      worker.postMessage({
        id,
        algorithm: request.algorithm,
        data: new Uint8Array(request.data),
        signature: new Uint8Array(request.signature),
        key: request.key,
        options: request.options,
      });
    });
  }

  /** Stops the worker; checks still pending finish on the calling thread. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) {
      worker.removeAllListeners();
      await worker.terminate();
    }
    this.#runPendingHere();
  }

  #ensureWorker(): Worker | undefined {
    if (this.#worker !== undefined) return this.#worker;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, name: "keyward-verify" });
    } catch {
      return undefined;
    }
    worker.unref();
    worker.on("message", (reply: Reply) => this.#settle(reply));
    const stopped = (error: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#report?.(error);
      this.#runPendingHere();
    };
    worker.on("error", stopped);
    worker.on("exit", (code) =>
      stopped(new Error(`signature check worker exited with code ${code}`)),
    );
    this.#worker = worker;
    return worker;
  }

  #settle(reply: Reply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (reply.error !== undefined) pending.reject(new VerifyError(reply.error));
    else pending.resolve(reply.valid === true);
  }

  /** Runs every pending check on this thread, after the worker stopped. */
  #runPendingHere(): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { request, resolve, reject } of pending) {
      try {
        resolve(verifyHere(request));
      } catch (error) {
        reject(error);
      }
    }
  }
}

/** The process's pool, shared by every signature check that may leave the event loop. */
export const verifyPool = new VerifyPool();
