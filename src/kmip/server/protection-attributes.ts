/**
 * Client changes that would lift a protection of an object. Sensitive may
 * only turn true and Extractable only turn false. Neither may be deleted,
 * because an object without them is treated as not Sensitive and as
 * Extractable. Usage Limits may be lowered but not deleted, raised or given
 * another unit, so a client cannot get more uses than the object allowed.
 */
import type { KmipItem } from "../item.ts";
import type { KmipAttribute } from "./attributes.ts";
import { KmipOperationError } from "./errors.ts";
import { child, optionalEnum } from "./items.ts";
import type { KmipObject } from "./object-store.ts";

function permissionDenied(message: string): KmipOperationError {
  return new KmipOperationError("PermissionDenied", message);
}

function currentValue(object: KmipObject, name: string): KmipItem | undefined {
  return object.attributes.find((attribute: KmipAttribute) => attribute.name === name)?.value;
}

/** Returns the uses left: the Usage Limits Count, or the Total while no use was counted. */
function remainingUses(limits: KmipItem): bigint | undefined {
  if (limits.type !== "Structure") return undefined;
  const count = child(limits, "UsageLimitsCount") ?? child(limits, "UsageLimitsTotal");
  return count?.type === "LongInteger" ? count.value : undefined;
}

function checkUsageLimits(current: KmipItem, value: KmipItem | undefined): void {
  if (value === undefined) {
    throw permissionDenied(
      "attribute Usage Limits cannot be deleted. Set a smaller Usage Limits Total to lower it",
    );
  }
  if (current.type !== "Structure" || value.type !== "Structure") return;
  const currentUnit = optionalEnum(current, "UsageLimitsUnit") ?? "Object";
  if (optionalEnum(value, "UsageLimitsUnit") !== currentUnit) {
    throw permissionDenied(`the Usage Limits Unit must stay ${currentUnit}`);
  }
  const left = remainingUses(current);
  const requested = remainingUses(value);
  if (left !== undefined && requested !== undefined && requested > left) {
    throw permissionDenied(
      `Usage Limits cannot rise above the ${left} uses left. Set a Usage Limits Total of at most ${left}`,
    );
  }
}

/**
 * Checks a client change to an object's attribute: a new value, or
 * deletion when value is undefined. Throws Permission Denied when the
 * change would lift Sensitive, Extractable or Usage Limits.
 */
export function checkProtectionChange(
  object: KmipObject,
  name: string,
  value: KmipItem | undefined,
): void {
  const current = currentValue(object, name);
  if (current === undefined) return;
  if (name === "Sensitive" || name === "Extractable") {
    if (value === undefined) throw permissionDenied(`attribute ${name} cannot be deleted`);
    // Sensitive may only become true and Extractable only false.
    const locked = name === "Sensitive";
    if (current.value === locked && value.value !== locked) {
      throw permissionDenied(`attribute ${name} is ${locked} and cannot change back`);
    }
    return;
  }
  if (name === "Usage Limits") checkUsageLimits(current, value);
}
