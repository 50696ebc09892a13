import type { KmipItem } from "../item.ts";
import { enumerationForTag } from "../tags.ts";
import type { ProtocolVersion } from "./context.ts";
import { enumItem, tag } from "./items.ts";

/** The last Result Reason value KMIP 1.4 defines (Object Already Exists); General Failure is 0x100. */
const LAST_1X_RESULT_REASON = 0x18;

/** The 1.x Result Reason for each 2.x reason a 1.x client cannot decode. */
const REASONS_FOR_1X: Readonly<Record<string, string>> = {
  WrongKeyLifecycleState: "PermissionDenied",
  AttributeReadOnly: "PermissionDenied",
  IncompatibleCryptographicUsageMask: "PermissionDenied",
  NotAuthorised: "PermissionDenied",
  ObjectNotFound: "ItemNotFound",
  ObjectDestroyed: "ItemNotFound",
  AttributeNotFound: "ItemNotFound",
  AttributeInstanceNotFound: "ItemNotFound",
  AttributeSingleValued: "InvalidField",
  MultiValuedAttribute: "InvalidField",
  InvalidObjectType: "InvalidField",
  NonUniqueNameAttribute: "InvalidField",
  KeyWrapTypeNotSupported: "FeatureNotSupported",
};

/**
 * Builds the Result Reason item for the protocol version: a reason that
 * KMIP 2.0 added is replaced by its nearest 1.x reason for a 1.x client.
 */
export function resultReasonItem(reason: string, version: ProtocolVersion): KmipItem {
  const values = enumerationForTag(tag("ResultReason"))?.byName;
  let name = values?.has(reason) ? reason : "GeneralFailure";
  const value = values?.get(name) ?? 0;
  if (version.major < 2 && value > LAST_1X_RESULT_REASON && name !== "GeneralFailure") {
    name = REASONS_FOR_1X[name] ?? "GeneralFailure";
  }
  return enumItem("ResultReason", name);
}
