/** Vault-style ACL policies: parsing, matching and storage. */
export { Acl, type AclDecision, type AclRequest } from "./acl.ts";
export {
  DEFAULT_POLICY,
  DEFAULT_POLICY_TEXT,
  MAX_POLICY_NAME_LENGTH,
  normalisePolicyName,
  ROOT_POLICY,
} from "./builtin.ts";
export { parsePolicy } from "./parse.ts";
export { POLICY_PREFIX, PolicyStore } from "./store.ts";
export {
  CAPABILITIES,
  type Capability,
  OPERATIONS,
  type Operation,
  type ParameterValue,
  type PathRule,
  type Policy,
} from "./types.ts";
