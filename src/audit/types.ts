/**
 * Shapes of Keyward's audit log: the entries the HTTP layer hands to the
 * broker, and the records the devices write.
 */

/** Audit device types that can be enabled. */
export const DEVICE_TYPES = ["file", "socket", "syslog", "store"] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** Vault's operation names, derived from the HTTP method. */
export const OPERATIONS = ["create", "read", "update", "delete", "list", "patch"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** The request part of an audit entry, as the HTTP layer passes it. */
export interface AuditRequest {
  /** The request id, which also appears in the server's log line and in error bodies. */
  id: string;
  operation: Operation;
  /** The API path without the leading `/v1/` and without the query string. */
  path: string;
  remoteAddress: string;
  /** The raw client token. The record holds only its HMAC. */
  clientToken?: string;
  /** The managed key the route names (its `:name` parameter), so `search({ key })` can find it. */
  keyName?: string;
  /** The request body. Sensitive fields are replaced by their HMAC before writing. */
  data?: unknown;
  /** The protocol of a request that did not come over the HTTP API; absent for HTTP. */
  protocol?: "kmip";
}

/** The caller's identity, once the token is checked. */
export interface AuditAuth {
  accessor: string;
  displayName: string;
  policies: string[];
  tokenType?: string;
}

/** The argument of `AuditBroker.logRequest`. */
export interface AuditRequestEntry {
  request: AuditRequest;
  /** Absent when the request carried no valid token. */
  auth?: AuditAuth;
  /** The public error message, when the request failed before its handler ran. */
  error?: string;
}

/** The argument of `AuditBroker.logResponse`. */
export interface AuditResponseEntry extends AuditRequestEntry {
  response: {
    status: number;
    /** The response body. Sensitive fields are replaced by their HMAC before writing. */
    data?: unknown;
  };
}

/** A request or response record before a device chains it: the same for every device. */
export interface AuditPayload {
  type: "request" | "response";
  time: string;
  /** Id of the Keyward node that wrote the record; absent in records written before per-node chains. */
  node?: string;
  request: {
    id: string;
    operation: Operation;
    path: string;
    remote_address: string;
    key_name?: string;
    data?: unknown;
    /** `kmip` for a KMIP request message; absent for HTTP requests. */
    protocol?: "kmip";
  };
  auth: {
    /** `hmac-sha256:<hex>` of the token; absent when the request carried none. */
    client_token?: string;
    /** Kept in the clear (Vault HMACs it by default), so `search({ accessor })` works. */
    accessor: string;
    display_name: string;
    policies: string[];
    token_type?: string;
  };
  response?: { status: number; data?: unknown };
  error?: string;
}

/** Fields every chained record carries. */
export interface ChainFields {
  /** Position in the node's chain of the device, from 1, with no gaps. */
  seq: number;
  /** `hash` of the previous record; 64 zeros for the first record. */
  prev_hash: string;
  /** SHA-256 (hex) of this record's canonical JSON without `hash` and `signature`. */
  hash: string;
}

/** A request or response record as a device writes it. */
export type AuditRecord = AuditPayload & ChainFields;

/**
 * A signed checkpoint. Its `hash` covers its `prev_hash`, so the signature
 * vouches for every record before it in the same chain.
 */
export interface CheckpointRecord extends ChainFields {
  type: "checkpoint";
  time: string;
  /** Id of the Keyward node whose chain the checkpoint signs; absent before per-node chains. */
  node?: string;
  /** Identifies the Ed25519 signing key: the first 16 hex digits of SHA-256 over its SPKI DER. */
  key_id: string;
  /** Ed25519 signature (base64) over `CHECKPOINT_SIGNING_PREFIX` followed by `hash`. */
  signature: string;
}

export type ChainedRecord = AuditRecord | CheckpointRecord;

/** One row of the device table, stored behind the barrier at `sys/audit/devices`. */
export interface DeviceEntry {
  /** Device path without slashes, such as `file` or `siem-socket`. */
  path: string;
  type: DeviceType;
  description: string;
  /** The options as given, all strings, as in Vault. */
  options: Record<string, string>;
  createdAt: string;
}

/** The end of a chain: the sequence number and hash of its last record. */
export interface ChainHead {
  seq: number;
  hash: string;
}
