import { createHash, type KeyObject } from "node:crypto";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.ts";
import type {
  AuditPayload,
  AuditRecord,
  ChainedRecord,
  ChainHead,
  CheckpointRecord,
} from "./types.ts";

/** `prev_hash` of a device's first record. */
export const GENESIS_HASH = "0".repeat(64);

/** Domain-separation prefix of the message a checkpoint signature covers. */
export const CHECKPOINT_SIGNING_PREFIX = "keyward-audit-checkpoint-v1:";

/**
 * Serialises a JSON value with object keys sorted (by UTF-16 code unit, as
 * `Array.prototype.sort` orders them) and no whitespace. Fields whose value
 * is undefined are left out, as `JSON.stringify` does. A record's hash is
 * taken over this form, so parsing a written line and serialising it again
 * gives the same bytes.
 */
export function canonicalJson(value: unknown): string {
  // Written with plain loops and string appends: this runs twice per request
  // (request and response records) and was a visible share of a request's time.
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError("canonical JSON has no form for NaN or Infinity");
      }
      return JSON.stringify(value);
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let index = 0; index < value.length; index++) {
          if (index > 0) out += ",";
          const item: unknown = value[index];
          out += item === undefined ? "null" : canonicalJson(item);
        }
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      // Array.prototype.sort without a comparator orders by UTF-16 code units.
      const names = Object.keys(record).sort();
      let out = "{";
      for (const name of names) {
        const child = record[name];
        if (child === undefined) continue;
        if (out.length > 1) out += ",";
        out += `${JSON.stringify(name)}:${canonicalJson(child)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`canonical JSON has no form for a ${typeof value}`);
  }
}

function inCodeUnitOrder(names: readonly string[]): boolean {
  for (let index = 1; index < names.length; index++) {
    if (names[index - 1]! > names[index]!) return false;
  }
  return true;
}

function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/** Computes a record's `hash`: SHA-256 (hex) of its canonical JSON without `hash` and `signature`. */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _hash, signature: _signature, ...body } = record;
  return createHash("sha256").update(canonicalJson(body), "utf8").digest("hex");
}

/** Returns the message a checkpoint's signature covers. */
export function checkpointMessage(hash: string): Buffer {
  return Buffer.from(CHECKPOINT_SIGNING_PREFIX + hash, "utf8");
}

/** Returns the key id of an Ed25519 public key: 16 hex digits of SHA-256 over its SPKI DER. */
export function signingKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: "der", type: "spki" });
  return createHash("sha256").update(der).digest("hex").slice(0, 16);
}

/** The private half of the audit signing key, with its id. */
export interface CheckpointSigner {
  keyId: string;
  privateKey: KeyObject;
}

/** A payload's fields as canonical JSON members (`"name":value`), in code-unit order of the names. */
export type FieldTexts = readonly (readonly [string, string])[];

/**
 * Serialises each field of `payload` as a canonical JSON member. `known`
 * contains the canonical JSON of the fields whose text the caller already
 * has; the others are serialised here.
 */
export function payloadFieldTexts(
  payload: AuditPayload,
  known: Readonly<Record<string, string | undefined>> = {},
): FieldTexts {
  const fields: [string, string][] = [];
  const record = payload as unknown as Record<string, unknown>;
  const names = Object.keys(record);
  // Array.prototype.sort without a comparator orders by UTF-16 code units.
  if (!inCodeUnitOrder(names)) names.sort();
  for (const name of names) {
    const value = record[name];
    if (value === undefined) continue;
    fields.push([name, `${JSON.stringify(name)}:${known[name] ?? canonicalJson(value)}`]);
  }
  return fields;
}

/**
 * Appends `payload` to the chain after `head`. Returns the record with its
 * chain fields, and its line as `recordLine` would serialise it: each field
 * is serialised once and serves both the hash and the line. `fieldTexts`
 * are the payload's fields as `payloadFieldTexts` returns them, when the
 * caller has them already.
 */
export function chainRecord(
  payload: AuditPayload,
  head: ChainHead,
  fieldTexts: FieldTexts = payloadFieldTexts(payload),
): { record: AuditRecord; line: string } {
  const seq = head.seq + 1;
  // The chain fields join the payload's fields where the order of names puts them.
  const chainFields: (readonly [string, string])[] = [
    ["prev_hash", `"prev_hash":${JSON.stringify(head.hash)}`],
    ["seq", `"seq":${seq}`],
  ];
  const fields = mergeByName(fieldTexts, chainFields);
  let before = "";
  let after = "";
  for (const [name, text] of fields) {
    if (compareCodeUnits(name, "hash") < 0) before += before === "" ? text : `,${text}`;
    else after += after === "" ? text : `,${text}`;
  }
  const separator = before !== "" && after !== "" ? "," : "";
  const hash = createHash("sha256").update(`{${before}${separator}${after}}`, "utf8").digest("hex");
  const hashField = `"hash":${JSON.stringify(hash)}`;
  const line = `{${before === "" ? "" : `${before},`}${hashField}${after === "" ? "" : `,${after}`}}`;
  // An object literal of fixed shape: spreading the payload measured several times slower.
  const record: AuditRecord = {
    type: payload.type,
    time: payload.time,
    node: payload.node,
    request: payload.request,
    auth: payload.auth,
    response: payload.response,
    error: payload.error,
    seq,
    prev_hash: head.hash,
    hash,
  };
  return { record, line };
}

/** Merges two lists of `[name, text]` that are each ordered by name into one ordered list. */
function mergeByName(
  first: readonly (readonly [string, string])[],
  second: readonly (readonly [string, string])[],
): (readonly [string, string])[] {
  const merged: (readonly [string, string])[] = [];
  let i = 0;
  let j = 0;
  while (i < first.length && j < second.length) {
    if (compareCodeUnits(first[i]![0], second[j]![0]) <= 0) merged.push(first[i++]!);
    else merged.push(second[j++]!);
  }
  while (i < first.length) merged.push(first[i++]!);
  while (j < second.length) merged.push(second[j++]!);
  return merged;
}

/** Builds the signed checkpoint that follows `head` in the chain of node `node`. */
export function chainCheckpoint(
  head: ChainHead,
  time: string,
  signer: CheckpointSigner,
  node?: string,
): CheckpointRecord {
  const unhashed = {
    type: "checkpoint" as const,
    time,
    node,
    seq: head.seq + 1,
    prev_hash: head.hash,
    key_id: signer.keyId,
  };
  const hash = recordHash(unhashed);
  const signature = ed25519Sign(signer.privateKey, checkpointMessage(hash)).toString("base64");
  return { ...unhashed, hash, signature };
}

/** Checks a checkpoint's signature against `publicKey`; a malformed signature returns false. */
export function checkpointSignatureValid(
  checkpoint: Pick<CheckpointRecord, "hash" | "signature">,
  publicKey: KeyObject,
): boolean {
  return ed25519Verify(
    publicKey,
    checkpointMessage(checkpoint.hash),
    Buffer.from(checkpoint.signature, "base64"),
  );
}

/** Serialises a chained record as the line a device writes, without the newline. */
export function recordLine(record: ChainedRecord): string {
  return canonicalJson(record);
}
