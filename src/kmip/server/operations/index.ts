/**
 * The operation table: each supported KMIP operation's handler and the
 * protocol version that introduced it. A request for an operation newer than
 * its own protocol version gets Operation Not Supported.
 */
import { atLeast, type OperationHandler, type ProtocolVersion } from "../context.ts";
import {
  addAttribute,
  deleteAttribute,
  getAttributeList,
  getAttributes,
  modifyAttribute,
  setAttribute,
} from "./attribute-ops.ts";
import { decrypt, encrypt } from "./crypto-ops.ts";
import { get } from "./get.ts";
import { createKeyPair, reKey } from "./key-pair.ts";
import { activate, create, destroy, register, revoke } from "./lifecycle.ts";
import { locate } from "./locate.ts";
import { reKeyKeyPair } from "./rekey-key-pair.ts";
import { acknowledge, check, discoverVersions, makeQuery, rngRetrieve } from "./server-ops.ts";
import { hash, mac, macVerify, sign, signatureVerify } from "./sign-mac-ops.ts";

interface OperationEntry {
  readonly handler: OperationHandler;
  /** The first protocol version that defines the operation; 1.0 when absent. */
  readonly since?: ProtocolVersion;
}

const V1_1 = { major: 1, minor: 1 };
const V1_2 = { major: 1, minor: 2 };
const V2_0 = { major: 2, minor: 0 };

const OPERATIONS: Readonly<Record<string, OperationEntry>> = {
  DiscoverVersions: { handler: discoverVersions, since: V1_1 },
  Query: { handler: makeQuery((version) => operationsIn(version)) },
  Create: { handler: create },
  CreateKeyPair: { handler: createKeyPair },
  Register: { handler: register },
  ReKey: { handler: reKey },
  ReKeyKeyPair: { handler: reKeyKeyPair, since: V1_1 },
  Get: { handler: get },
  GetAttributes: { handler: getAttributes },
  GetAttributeList: { handler: getAttributeList },
  AddAttribute: { handler: addAttribute },
  ModifyAttribute: { handler: modifyAttribute },
  DeleteAttribute: { handler: deleteAttribute },
  SetAttribute: { handler: setAttribute, since: V2_0 },
  Locate: { handler: locate },
  Check: { handler: check },
  Activate: { handler: activate },
  Revoke: { handler: revoke },
  Destroy: { handler: destroy },
  Encrypt: { handler: encrypt, since: V1_2 },
  Decrypt: { handler: decrypt, since: V1_2 },
  Sign: { handler: sign, since: V1_2 },
  SignatureVerify: { handler: signatureVerify, since: V1_2 },
  MAC: { handler: mac, since: V1_2 },
  MACVerify: { handler: macVerify, since: V1_2 },
  Hash: { handler: hash, since: V1_2 },
  RNGRetrieve: { handler: rngRetrieve, since: V1_2 },
  Interop: { handler: acknowledge, since: V2_0 },
  Log: { handler: acknowledge, since: V2_0 },
};

/** Lists the operations that exist in a protocol version. */
function operationsIn(version: ProtocolVersion): string[] {
  return Object.entries(OPERATIONS)
    .filter(
      ([, entry]) =>
        entry.since === undefined || atLeast(version, entry.since.major, entry.since.minor),
    )
    .map(([operation]) => operation);
}

export function operationHandler(operation: string): OperationHandler | undefined {
  return Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation]!.handler : undefined;
}

export function operationIntroducedIn(operation: string): ProtocolVersion | undefined {
  return Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation]!.since : undefined;
}
