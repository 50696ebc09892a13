/**
 * The item type and required fields of each standard attribute's value,
 * after the attribute definitions of KMIP 1.4 and 2.1. The server checks a
 * client's values against this table before it stores or matches them.
 *
 * NOTE: the table was not compared field by field with the specification
 * text. A rule stricter than KMIP would reject a valid request.
 */
import type { KmipItem } from "../item.ts";
import type { ItemType } from "../tags.ts";
import { invalidField } from "./errors.ts";
import { tag } from "./items.ts";

/** One field of a structured attribute value. */
interface FieldRule {
  /** The field's tag name, such as "NameValue". */
  readonly name: string;
  /** The field's item type, or undefined when KMIP allows several types. */
  readonly type?: ItemType;
  readonly required: boolean;
}

/** The expected form of an attribute's value. */
interface ValueRule {
  readonly type: ItemType;
  /** Fields of a Structure value. Fields not listed here are not checked. */
  readonly fields?: readonly FieldRule[];
}

function scalar(type: ItemType): ValueRule {
  return { type };
}

function required(name: string, type?: ItemType): FieldRule {
  return type === undefined ? { name, required: true } : { name, type, required: true };
}

function optional(name: string, type: ItemType): FieldRule {
  return { name, type, required: false };
}

/** Value rules by the attribute's specification name. Attributes not listed are not checked. */
const VALUE_RULES: Readonly<Record<string, ValueRule>> = {
  "Unique Identifier": scalar("TextString"),
  Name: {
    type: "Structure",
    fields: [required("NameValue", "TextString"), required("NameType", "Enumeration")],
  },
  "Object Type": scalar("Enumeration"),
  "Cryptographic Algorithm": scalar("Enumeration"),
  "Cryptographic Length": scalar("Integer"),
  "Cryptographic Parameters": scalar("Structure"),
  "Cryptographic Domain Parameters": scalar("Structure"),
  "Certificate Type": scalar("Enumeration"),
  "Certificate Length": scalar("Integer"),
  "Digital Signature Algorithm": scalar("Enumeration"),
  "Operation Policy Name": scalar("TextString"),
  "Cryptographic Usage Mask": scalar("Integer"),
  "Lease Time": scalar("Interval"),
  "Usage Limits": {
    type: "Structure",
    fields: [
      required("UsageLimitsTotal", "LongInteger"),
      optional("UsageLimitsCount", "LongInteger"),
      required("UsageLimitsUnit", "Enumeration"),
    ],
  },
  State: scalar("Enumeration"),
  "Initial Date": scalar("DateTime"),
  "Activation Date": scalar("DateTime"),
  "Process Start Date": scalar("DateTime"),
  "Protect Stop Date": scalar("DateTime"),
  "Deactivation Date": scalar("DateTime"),
  "Destroy Date": scalar("DateTime"),
  "Compromise Occurrence Date": scalar("DateTime"),
  "Compromise Date": scalar("DateTime"),
  "Archive Date": scalar("DateTime"),
  "Last Change Date": scalar("DateTime"),
  "Original Creation Date": scalar("DateTime"),
  "Revocation Reason": {
    type: "Structure",
    fields: [
      required("RevocationReasonCode", "Enumeration"),
      optional("RevocationMessage", "TextString"),
    ],
  },
  "Object Group": scalar("TextString"),
  Fresh: scalar("Boolean"),
  // KMIP 2.x lets a Linked Object Identifier be a Text String, an Integer or an Enumeration.
  Link: {
    type: "Structure",
    fields: [required("LinkType", "Enumeration"), required("LinkedObjectIdentifier")],
  },
  // Application Data is required in KMIP 1.x and optional in 2.x.
  "Application Specific Information": {
    type: "Structure",
    fields: [
      required("ApplicationNamespace", "TextString"),
      optional("ApplicationData", "TextString"),
    ],
  },
  "Contact Information": scalar("TextString"),
  "Alternative Name": {
    type: "Structure",
    fields: [
      required("AlternativeNameValue", "TextString"),
      required("AlternativeNameType", "Enumeration"),
    ],
  },
  "Key Value Present": scalar("Boolean"),
  "Key Value Location": {
    type: "Structure",
    fields: [
      required("KeyValueLocationValue", "TextString"),
      required("KeyValueLocationType", "Enumeration"),
    ],
  },
  Sensitive: scalar("Boolean"),
  "Always Sensitive": scalar("Boolean"),
  Extractable: scalar("Boolean"),
  "Never Extractable": scalar("Boolean"),
  "Random Number Generator": {
    type: "Structure",
    fields: [required("RNGAlgorithm", "Enumeration")],
  },
  Description: scalar("TextString"),
  Comment: scalar("TextString"),
  "Key Format Type": scalar("Enumeration"),
  "Short Unique Identifier": scalar("ByteString"),
  "Protection Level": scalar("Enumeration"),
  "Protection Period": scalar("Interval"),
  "Quantum Safe": scalar("Boolean"),
  "NIST Key Type": scalar("Enumeration"),
  "Opaque Data Type": scalar("Enumeration"),
  "PKCS#12 Friendly Name": scalar("TextString"),
};

/**
 * Checks that a standard attribute's value has the item type and required
 * fields of its definition. Throws Invalid Field naming the attribute.
 */
export function checkAttributeValue(name: string, value: KmipItem): void {
  const rule = VALUE_RULES[name];
  if (rule === undefined) return;
  if (value.type !== rule.type) {
    throw invalidField(`attribute ${name} must be a ${rule.type}, not a ${value.type}`);
  }
  if (value.type !== "Structure" || rule.fields === undefined) return;
  for (const field of rule.fields) {
    const fieldTag = tag(field.name);
    const items = value.value.filter((item) => item.tag === fieldTag);
    if (items.length === 0 && field.required) {
      throw invalidField(`attribute ${name} is missing its ${field.name}`);
    }
    if (items.length > 1) {
      throw invalidField(`attribute ${name} has more than one ${field.name}`);
    }
    const item = items[0];
    if (item !== undefined && field.type !== undefined && item.type !== field.type) {
      throw invalidField(`the ${field.name} of attribute ${name} must be a ${field.type}`);
    }
  }
}
