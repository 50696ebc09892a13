/**
 * Streamed Encrypt and Decrypt. A request with Init Indicator true opens a
 * node:crypto cipher and returns a Correlation Value. Later requests carry
 * that value and more Data. The one with Final Indicator true finishes the
 * cipher and returns the last output, with the tag in AEAD modes.
 *
 * The open streams live in this process's memory: a stream must continue
 * on the node that opened it, does not survive a restart, and is not
 * rolled back by a batch's Undo. Each stream keeps only the cipher context,
 * never a copy of the key bytes. The table is bounded by a count per
 * client, a count in total, and an idle time after which a stream is
 * dropped.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { KmipItem, StructureItem } from "../item.ts";
import type { OperationContext } from "./context.ts";
import { cryptoParameters } from "./crypto-params.ts";
import { invalidField, KmipOperationError } from "./errors.ts";
import { bytes, child, optionalBytes, textOf } from "./items.ts";
import { secretBytes } from "./material.ts";
import type { KmipObject } from "./object-store.ts";
import { loadObject } from "./objects.ts";
import { uidItem } from "./operations/common.ts";
import {
  algorithmOf,
  checkCreateUse,
  checkProcessUse,
  consumeUsage,
  data,
  optionalBuffer,
} from "./operations/crypto-checks.ts";
import { nodeIv, setup } from "./operations/symmetric-crypto.ts";

type StreamOperation = "Encrypt" | "Decrypt";

/** The node:crypto object of a stream; Cipher and Decipher share these methods. */
interface StreamCipher {
  update(data: Buffer): Buffer;
  final(): Buffer;
  setAAD(aad: Buffer): unknown;
  setAuthTag?(tag: Buffer): unknown;
  getAuthTag?(): Buffer;
  setAutoPadding(pad: boolean): unknown;
}

interface CryptoStream {
  readonly operation: StreamOperation;
  readonly uid: string;
  readonly identity: string | undefined;
  readonly cipher: StreamCipher;
  readonly aead: boolean;
  readonly tagLength: number;
  /** Milliseconds since the epoch of the last request. */
  lastUsed: number;
}

export interface StreamLimits {
  /** Open streams in the process. Default 1024. */
  maxStreams?: number;
  /** Open streams of one client identity. Default 64. */
  maxStreamsPerClient?: number;
  /** Milliseconds without a request after which a stream is dropped. Default 300,000 (5 minutes). */
  idleTimeoutMs?: number;
  /** The clock, in milliseconds; tests pass their own. */
  now?: () => number;
}

function invalidCorrelation(): KmipOperationError {
  return new KmipOperationError(
    "InvalidCorrelationValue",
    "the Correlation Value names no open stream of this client for this operation and object",
  );
}

/** The open streams, by Correlation Value in hex. */
export class CryptoStreamTable {
  readonly #streams = new Map<string, CryptoStream>();
  readonly #maxStreams: number;
  readonly #maxPerClient: number;
  readonly #idleMs: number;
  readonly #now: () => number;

  constructor(limits: StreamLimits = {}) {
    this.#maxStreams = limits.maxStreams ?? 1024;
    this.#maxPerClient = limits.maxStreamsPerClient ?? 64;
    this.#idleMs = limits.idleTimeoutMs ?? 300_000;
    this.#now = limits.now ?? Date.now;
  }

  /** The number of open streams, after dropping idle ones. */
  get size(): number {
    this.#dropIdle();
    return this.#streams.size;
  }

  #dropIdle(): void {
    const cutoff = this.#now() - this.#idleMs;
    for (const [key, stream] of this.#streams) {
      if (stream.lastUsed <= cutoff) this.#streams.delete(key);
    }
  }

  /** Stores a new stream and returns its Correlation Value; Server Limit Exceeded when full. */
  open(stream: Omit<CryptoStream, "lastUsed">): Buffer {
    this.#dropIdle();
    let own = 0;
    for (const other of this.#streams.values()) if (other.identity === stream.identity) own++;
    if (this.#streams.size >= this.#maxStreams || own >= this.#maxPerClient) {
      throw new KmipOperationError(
        "ServerLimitExceeded",
        "too many open streamed operations; finish or abandon one, or wait for idle ones to expire",
      );
    }
    const correlation = randomBytes(16);
    this.#streams.set(correlation.toString("hex"), { ...stream, lastUsed: this.#now() });
    return correlation;
  }

  /** Returns the open stream a later request continues, checking who continues it and how. */
  continue(
    correlation: Uint8Array,
    operation: StreamOperation,
    identity: string | undefined,
  ): CryptoStream {
    this.#dropIdle();
    const stream = this.#streams.get(Buffer.from(correlation).toString("hex"));
    if (stream === undefined || stream.operation !== operation || stream.identity !== identity) {
      throw invalidCorrelation();
    }
    stream.lastUsed = this.#now();
    return stream;
  }

  /** Returns the Unique Identifier of the stream a Correlation Value names, without checking its owner. */
  objectOf(correlation: Uint8Array): string | undefined {
    return this.#streams.get(Buffer.from(correlation).toString("hex"))?.uid;
  }

  close(correlation: Uint8Array): void {
    this.#streams.delete(Buffer.from(correlation).toString("hex"));
  }
}

/** The process's stream table, which the Encrypt and Decrypt operations use. */
export const cryptoStreams = new CryptoStreamTable();

/**
 * Returns the object that a request continuing a stream works on, so that
 * its policy check names that object, or undefined for any other request.
 */
export function streamObjectOf(operation: string, payload: StructureItem): string | undefined {
  if (operation !== "Encrypt" && operation !== "Decrypt") return undefined;
  const correlation = optionalBytes(payload, "CorrelationValue");
  return correlation === undefined ? undefined : cryptoStreams.objectOf(correlation);
}

function indicator(payload: StructureItem, name: string): boolean {
  const item = child(payload, name);
  if (item === undefined) return false;
  if (item.type !== "Boolean")
    throw invalidField(`${name.replace(/([a-z])([A-Z])/g, "$1 $2")} must be a Boolean`);
  return item.value;
}

/** True when the request opens or continues a stream (Init Indicator true or a Correlation Value). */
export function isStreamRequest(payload: StructureItem): boolean {
  return indicator(payload, "InitIndicator") || child(payload, "CorrelationValue") !== undefined;
}

function checkUse(object: KmipObject, operation: StreamOperation, now: bigint): void {
  if (operation === "Encrypt") checkCreateUse(object, operation, now);
  else checkProcessUse(object, operation, now);
}

/** Opens a cipher for the first request of a stream. */
function openStream(
  object: KmipObject,
  payload: StructureItem,
  operation: StreamOperation,
  context: OperationContext,
): { stream: Omit<CryptoStream, "lastUsed">; generatedIv: Buffer | undefined } {
  if (object.objectType !== "SymmetricKey" || object.hsmObject !== undefined) {
    throw new KmipOperationError(
      "FeatureNotSupported",
      "streamed Encrypt and Decrypt need a symmetric key kept outside an HSM",
    );
  }
  const parameters = cryptoParameters(payload, object);
  const algorithm = algorithmOf(object, parameters);
  const key = secretBytes(object);
  try {
    const plan = setup(
      {
        algorithm,
        key,
        parameters,
        data: Buffer.alloc(0),
        iv: optionalBuffer(payload, "IVCounterNonce"),
        aad: undefined,
        tag: undefined,
      },
      operation === "Encrypt",
    );
    const iv = plan.iv === null ? null : nodeIv(algorithm, plan.iv);
    const options = plan.aead ? ({ authTagLength: plan.tagLength } as object) : undefined;
    let cipher: StreamCipher;
    try {
      cipher = (operation === "Encrypt"
        ? createCipheriv(plan.name, key, iv, options)
        : createDecipheriv(plan.name, key, iv, options)) as unknown as StreamCipher;
    } catch {
      throw new KmipOperationError("InvalidField", "the IV or key does not fit the cipher");
    }
    const aad = optionalBuffer(payload, "AuthenticatedEncryptionAdditionalData");
    if (plan.aead && aad !== undefined) cipher.setAAD(aad);
    cipher.setAutoPadding(plan.pad);
    return {
      stream: {
        operation,
        uid: object.uid,
        identity: context.identity,
        cipher,
        aead: plan.aead,
        tagLength: plan.tagLength,
      },
      generatedIv: plan.generatedIv,
    };
  } finally {
    key.fill(0);
  }
}

/** Feeds the request's Data to the stream, and finishes it when the request is the final one. */
function runChunk(
  stream: Omit<CryptoStream, "lastUsed">,
  payload: StructureItem,
  final: boolean,
): { output: Buffer; tag: Buffer | undefined } {
  const input = data(payload);
  if (!final) {
    try {
      return { output: stream.cipher.update(input), tag: undefined };
    } catch {
      throw new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
    }
  }
  if (stream.operation === "Decrypt" && stream.aead) {
    const tag = optionalBytes(payload, "AuthenticatedEncryptionTag");
    if (tag === undefined || tag.length !== stream.tagLength) {
      throw new KmipOperationError(
        "CryptographicFailure",
        "the final request of a streamed AEAD decryption needs the Authenticated Encryption Tag",
      );
    }
    stream.cipher.setAuthTag?.(Buffer.from(tag));
  }
  try {
    const output = Buffer.concat([stream.cipher.update(input), stream.cipher.final()]);
    const tag =
      stream.operation === "Encrypt" && stream.aead ? stream.cipher.getAuthTag?.() : undefined;
    return { output, tag };
  } catch {
    throw new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
  }
}

/**
 * Runs one request of a streamed Encrypt or Decrypt. The object is checked
 * again at every request, so a key that is revoked or reaches its Protect
 * Stop Date stops its open streams. A request that fails closes its stream.
 */
export async function runStreamRequest(
  payload: StructureItem,
  context: OperationContext,
  operation: StreamOperation,
  table: CryptoStreamTable = cryptoStreams,
): Promise<KmipItem[]> {
  const correlation = optionalBytes(payload, "CorrelationValue");
  const final = indicator(payload, "FinalIndicator");
  const requestedUid = child(payload, "UniqueIdentifier");

  if (correlation === undefined) {
    const uid = requestedUid === undefined ? context.idPlaceholder : textOf(requestedUid);
    if (uid === undefined) throw invalidField("Unique Identifier is missing");
    const object = await loadObject(context, uid);
    context.idPlaceholder = uid;
    checkUse(object, operation, context.now);
    await consumeUsage(object, data(payload).length, context);
    const { stream, generatedIv } = openStream(object, payload, operation, context);
    const { output, tag } = runChunk(stream, payload, final);
    const items = [uidItem(uid), bytes("Data", output)];
    if (generatedIv !== undefined) items.push(bytes("IVCounterNonce", generatedIv));
    if (final) {
      if (tag !== undefined) items.push(bytes("AuthenticatedEncryptionTag", tag));
    } else {
      items.push(bytes("CorrelationValue", table.open(stream)));
    }
    return items;
  }

  const stream = table.continue(correlation, operation, context.identity);
  try {
    if (requestedUid !== undefined && textOf(requestedUid) !== stream.uid)
      throw invalidCorrelation();
    const object = await loadObject(context, stream.uid);
    context.idPlaceholder = stream.uid;
    checkUse(object, operation, context.now);
    await consumeUsage(object, data(payload).length, context);
    const { output, tag } = runChunk(stream, payload, final);
    const items = [uidItem(stream.uid), bytes("Data", output)];
    if (final) {
      table.close(correlation);
      if (tag !== undefined) items.push(bytes("AuthenticatedEncryptionTag", tag));
    } else {
      items.push(bytes("CorrelationValue", correlation));
    }
    return items;
  } catch (error) {
    table.close(correlation);
    throw error;
  }
}
