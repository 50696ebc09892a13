import type { KeyObject } from "node:crypto";
import { loadPublicKey } from "../crypto/asymmetric-keys.ts";
import { KeywardError } from "../errors.ts";
import {
  canonicalJson,
  checkpointSignatureValid,
  GENESIS_HASH,
  recordHash,
  signingKeyId,
} from "./chain.ts";
import { isValidNodeId } from "./node-id.ts";

export type TamperReason =
  | "altered"
  | "removed"
  | "reordered"
  | "bad signature"
  | "malformed"
  | "unsigned";

export interface VerifyOptions {
  /**
   * The last record the device reports having written. The log must reach
   * it with the same hash, which catches a truncated log and records
   * rewritten after the last checkpoint. Later records are allowed, since
   * the device may write more while the log is read.
   */
  expectedHead?: { seq: number; hash: string };
  /**
   * Requires the log to end with a signed checkpoint, as a log closed
   * cleanly (or rotated) does. Without it, records after the last
   * checkpoint are only reported as `unsignedRecords`.
   */
  requireSignedEnd?: boolean;
  /**
   * Accepts a log that starts after sequence number 1, such as the newer
   * file of a rotated log verified on its own. Its first record's link to
   * the record before it cannot be checked.
   */
  continuation?: boolean;
  /**
   * Requires every record to name this node in its `node` field, as every
   * record of a node's chain of a store device does. A record of another
   * node's chain placed here is reported as `altered`.
   */
  expectedNode?: string;
}

/** The first record that failed verification. */
export interface FirstBad {
  /** 1-based line number in the log where the problem shows. */
  line: number;
  /** The file the line is in, when several files were verified as one log. */
  file?: string;
  /** The sequence number concerned, when one is known: for `removed`, the first missing one. */
  seq?: number;
  reason: TamperReason;
  /** A sentence for the operator; it names positions and hashes, never record contents. */
  detail: string;
}

export interface VerifySuccess {
  ok: true;
  /** Request and response records checked. */
  records: number;
  checkpoints: number;
  /** Sequence number of the last record; 0 for an empty log. */
  lastSeq: number;
  /**
   * Records after the last checkpoint, which no signature covers. A log
   * that ends cleanly ends with a checkpoint; a crash or a truncation of
   * whole records leaves such a tail.
   */
  unsignedRecords: number;
  /** False when no public key was given, so only the hash chain was checked. */
  signaturesChecked: boolean;
}

export interface VerifyFailure {
  ok: false;
  /** Records and checkpoints that verified before the first bad one. */
  records: number;
  checkpoints: number;
  firstBad: FirstBad;
}

export type VerifyResult = VerifySuccess | VerifyFailure;

const HEX_SHA256 = /^[0-9a-f]{64}$/;
const RECORD_TYPES = new Set(["request", "response", "checkpoint"]);

interface ParsedRecord extends Record<string, unknown> {
  type: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** Parses one line into a record with well-formed chain fields, or returns why it is malformed. */
function parseRecord(line: string): ParsedRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return "the line is not valid JSON";
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "the line is not a JSON object";
  }
  const record = value as Record<string, unknown>;
  if (typeof record.type !== "string" || !RECORD_TYPES.has(record.type)) {
    return "the record has no valid type";
  }
  if (typeof record.seq !== "number" || !Number.isSafeInteger(record.seq) || record.seq < 1) {
    return "the record has no valid seq";
  }
  if (typeof record.prev_hash !== "string" || !HEX_SHA256.test(record.prev_hash)) {
    return "the record has no valid prev_hash";
  }
  if (typeof record.hash !== "string" || !HEX_SHA256.test(record.hash)) {
    return "the record has no valid hash";
  }
  if (
    record.type === "checkpoint" &&
    (typeof record.signature !== "string" || typeof record.key_id !== "string")
  ) {
    return "the checkpoint has no signature or key_id";
  }
  return record as ParsedRecord;
}

/** Reads the rest of a log and reports whether a record with sequence number `seq` appears in it. */
async function appearsLater(lines: AsyncIterator<string>, seq: number): Promise<boolean> {
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    const record = parseRecord(next.value);
    if (typeof record !== "string" && record.seq === seq) return true;
  }
  return false;
}

function iterate(lines: AsyncIterable<string> | Iterable<string>): AsyncIterator<string> {
  if (Symbol.asyncIterator in lines) return lines[Symbol.asyncIterator]();
  const iterator = lines[Symbol.iterator]();
  return { next: async () => iterator.next() };
}

function parsePublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = loadPublicKey(pem);
  } catch (error) {
    throw new KeywardError("invalid_field", "the public key is not an SPKI PEM public key", {
      field: "public_key",
      cause: error,
    });
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new KeywardError("invalid_field", "the public key is not an Ed25519 key", {
      field: "public_key",
    });
  }
  return key;
}

/**
 * Verifies an audit log, one JSON record per line, and names the first
 * record that was altered, removed, reordered or badly signed.
 *
 * Every record must hash to its `hash`, be written in canonical JSON (as
 * `recordLine` writes it), carry the next sequence number and link to its
 * predecessor through `prev_hash`. With `publicKeyPem`, every
 * checkpoint's signature and key id are checked too. Without it, only the
 * hash chain is checked, and anyone who can write the file can rebuild a
 * consistent chain, so pass the key for real verification.
 *
 * Blank lines are skipped. The log must start at sequence number 1 unless
 * `options.continuation` is set.
 *
 * A log cut off after whole records, or rewritten and rehashed after its
 * last checkpoint, still forms a valid chain. `options` catches those:
 * `expectedHead` compares the end with what the device wrote, and
 * `requireSignedEnd` demands a signature over the end.
 */
export async function verifyAuditLog(
  lines: AsyncIterable<string> | Iterable<string>,
  publicKeyPem?: string,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const publicKey = publicKeyPem === undefined ? undefined : parsePublicKey(publicKeyPem);
  const expectedKeyId = publicKey === undefined ? undefined : signingKeyId(publicKey);
  const iterator = iterate(lines);

  let lineNumber = 0;
  let previousLine = 0;
  let expectedSeq = 1;
  let previousHash = GENESIS_HASH;
  let records = 0;
  let checkpoints = 0;
  let unsignedRecords = 0;
  const fail = (firstBad: FirstBad): VerifyFailure => ({
    ok: false,
    records,
    checkpoints,
    firstBad,
  });

  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    lineNumber += 1;
    if (next.value.trim() === "") continue;
    const line = lineNumber;

    const record = parseRecord(next.value);
    if (typeof record === "string") return fail({ line, reason: "malformed", detail: record });
    const seq = record.seq;
    if (options.continuation && previousLine === 0 && seq > 1) {
      expectedSeq = seq;
      previousHash = record.prev_hash;
    }

    if (recordHash(record) !== record.hash) {
      return fail({
        line,
        seq,
        reason: "altered",
        detail: `record ${seq} does not match its own hash`,
      });
    }
    // The hash covers the parsed record, so a line that parses to the same
    // record but differs in its bytes (a key repeated with another value,
    // which JSON readers resolve differently, or added whitespace) would
    // otherwise pass. Devices write canonical JSON only.
    if (canonicalJson(record) !== next.value) {
      return fail({
        line,
        seq,
        reason: "altered",
        detail: `record ${seq} is not written in canonical JSON, so its line differs from what its hash covers`,
      });
    }
    if (options.expectedNode !== undefined && record.node !== options.expectedNode) {
      const named = isValidNodeId(record.node)
        ? `node "${record.node}"`
        : record.node === undefined
          ? "no node"
          : "an invalid node";
      return fail({
        line,
        seq,
        reason: "altered",
        detail: `record ${seq} names ${named}, not node "${options.expectedNode}" whose chain it is in`,
      });
    }
    if (seq > expectedSeq) {
      const reordered = await appearsLater(iterator, expectedSeq);
      return fail({
        line,
        seq: reordered ? seq : expectedSeq,
        reason: reordered ? "reordered" : "removed",
        detail: reordered
          ? `record ${seq} appears where record ${expectedSeq} belongs`
          : `record ${expectedSeq} is missing before record ${seq}`,
      });
    }
    if (seq < expectedSeq) {
      return fail({
        line,
        seq,
        reason: "reordered",
        detail: `record ${seq} appears after record ${expectedSeq - 1}`,
      });
    }
    if (record.prev_hash !== previousHash) {
      // Each record's hash is intact, so one of the two was changed and then
      // rehashed. The earlier of them is reported, as the first candidate.
      const blamePrevious = seq > 1;
      return fail({
        line: blamePrevious ? previousLine : line,
        seq: blamePrevious ? seq - 1 : seq,
        reason: "altered",
        detail: blamePrevious
          ? `record ${seq - 1} does not match the prev_hash of record ${seq}; one of them was changed and rehashed`
          : "record 1 does not start the chain",
      });
    }

    const head = options.expectedHead;
    if (head !== undefined && seq === head.seq && record.hash !== head.hash) {
      return fail({
        line,
        seq,
        reason: "altered",
        detail: `record ${seq} differs from the record the device wrote with that sequence number`,
      });
    }

    if (record.type === "checkpoint") {
      if (publicKey !== undefined) {
        if (record.key_id !== expectedKeyId) {
          return fail({
            line,
            seq,
            reason: "bad signature",
            detail: `checkpoint ${seq} names signing key ${String(record.key_id)}, not ${expectedKeyId}`,
          });
        }
        const signed = { hash: record.hash, signature: record.signature as string };
        if (!checkpointSignatureValid(signed, publicKey)) {
          return fail({
            line,
            seq,
            reason: "bad signature",
            detail: `checkpoint ${seq} has an invalid signature`,
          });
        }
      }
      checkpoints += 1;
      unsignedRecords = 0;
    } else {
      records += 1;
      unsignedRecords += 1;
    }
    expectedSeq = seq + 1;
    previousHash = record.hash;
    previousLine = line;
  }

  const lastSeq = expectedSeq - 1;
  const head = options.expectedHead;
  if (head !== undefined && lastSeq < head.seq) {
    return fail({
      line: lineNumber + 1,
      seq: expectedSeq,
      reason: "removed",
      detail: `the log ends at record ${lastSeq}, but the device wrote up to record ${head.seq}`,
    });
  }
  if (options.requireSignedEnd && (unsignedRecords > 0 || lastSeq === 0)) {
    return fail({
      // The last record, which no checkpoint follows; 1 for an empty log.
      line: Math.max(previousLine, 1),
      seq: lastSeq === 0 ? undefined : lastSeq,
      reason: "unsigned",
      detail:
        lastSeq === 0
          ? "the log is empty, so no checkpoint signs it"
          : `the last ${unsignedRecords} records follow the last checkpoint, so no signature covers them`,
    });
  }

  return {
    ok: true,
    records,
    checkpoints,
    lastSeq,
    unsignedRecords,
    signaturesChecked: publicKey !== undefined,
  };
}
