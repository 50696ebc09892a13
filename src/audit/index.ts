export {
  AuditBroker,
  type AuditBrokerOptions,
  BUILT_IN_STORE_PATH,
  DEFAULT_CHECKPOINT_INTERVAL,
  DEFAULT_WRITE_TIMEOUT_MS,
} from "./broker.ts";
export { canonicalJson, GENESIS_HASH, recordHash } from "./chain.ts";
export type { DeviceStats } from "./device.ts";
export { DEFAULT_AUDIT_NODE_ID, isValidNodeId, validateNodeId } from "./node-id.ts";
export { DEVICE_TABLE_KEY as AUDIT_DEVICE_TABLE_KEY } from "./persistence.ts";
export { DEFAULT_SENSITIVE_FIELDS, HMAC_PREFIX, hmacValue, redact } from "./redact.ts";
export type { SearchQuery, SearchResult } from "./search.ts";
export type { NodeChainResult, StoreVerifyResult } from "./store-verify.ts";
export * from "./types.ts";
export {
  type FirstBad,
  type TamperReason,
  type VerifyResult,
  verifyAuditLog,
} from "./verify.ts";
