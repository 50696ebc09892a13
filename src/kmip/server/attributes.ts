/**
 * KMIP attributes in the server's own form, and their conversion to and from
 * the two wire forms.
 *
 * KMIP 1.x sends an attribute as an Attribute structure (Attribute Name text,
 * optional Attribute Index, Attribute Value). KMIP 2.x sends each attribute
 * as an item tagged with the attribute's own tag inside an Attributes
 * structure, and custom attributes as Attribute structures. The server keeps
 * the 1.x name (the specification's spelling, such as "Cryptographic
 * Length") and the value re-tagged as Attribute Value, and renders whichever
 * form the request's protocol version uses.
 */
import type { KmipItem, StructureItem } from "../item.ts";
import { tagDisplayName, tagForAttributeName, tagInfo } from "../tags.ts";
import { checkAttributeValue } from "./attribute-values.ts";
import { invalidField, KmipOperationError } from "./errors.ts";
import { asStructure, child, optionalInteger, retag, struct, tag, text, textOf } from "./items.ts";

export interface KmipAttribute {
  /** The specification's name ("Cryptographic Algorithm") or a custom name ("x-Purpose"). */
  readonly name: string;
  /** The value, tagged Attribute Value. */
  readonly value: KmipItem;
}

/** Attributes that may have several instances; every other attribute has at most one. */
const MULTI_VALUED = new Set([
  "Name",
  "Object Group",
  "Link",
  "Application Specific Information",
  "Alternative Name",
  "Key Value Location",
  "Certificate Identifier",
  "Certificate Subject",
  "Certificate Issuer",
  "Digest",
  "Vendor Attribute",
  "Protection Storage Masks",
]);

/**
 * Attributes the server sets and a client may not add, change or delete
 * (KMIP 1.4 and 2.1, "Attributes": rules for each attribute).
 */
const SERVER_ONLY = new Set([
  "Unique Identifier",
  "Object Type",
  "Cryptographic Algorithm",
  "Cryptographic Length",
  "Cryptographic Domain Parameters",
  "Certificate Type",
  "Certificate Length",
  "Digital Signature Algorithm",
  "Digest",
  "State",
  "Initial Date",
  "Last Change Date",
  "Original Creation Date",
  "Destroy Date",
  "Compromise Date",
  "Compromise Occurrence Date",
  "Revocation Reason",
  "Key Value Present",
  "Short Unique Identifier",
  "Fresh",
  "Always Sensitive",
  "Never Extractable",
  "Random Number Generator",
  "Lease Time",
  "X.509 Certificate Identifier",
  "X.509 Certificate Subject",
  "X.509 Certificate Issuer",
  "Short Unique Identifier",
]);

/** True for the name components the server reads from a certificate ("Certificate Subject CN"). */
function isCertificateNameComponent(name: string): boolean {
  return name.startsWith("Certificate Subject ") || name.startsWith("Certificate Issuer ");
}

/** Attributes the server sets even when a client creates or registers an object. */
const SERVER_SET_AT_CREATION = new Set([
  "Unique Identifier",
  "State",
  "Initial Date",
  "Last Change Date",
  "Destroy Date",
  "Compromise Date",
  "Revocation Reason",
  "Digest",
]);

/** The 1.x structures whose Name children name a server-side template. */
const TEMPLATE_CONTAINERS = new Set([
  "TemplateAttribute",
  "CommonTemplateAttribute",
  "PrivateKeyTemplateAttribute",
  "PublicKeyTemplateAttribute",
]);

/** Attributes newer than KMIP 1.0, by the version that added them; older clients never see them. */
const ATTRIBUTE_SINCE: Readonly<Record<string, readonly [number, number]>> = {
  Fresh: [1, 1],
  "Certificate Length": [1, 1],
  "Digital Signature Algorithm": [1, 1],
  "X.509 Certificate Identifier": [1, 1],
  "X.509 Certificate Subject": [1, 1],
  "X.509 Certificate Issuer": [1, 1],
  Sensitive: [1, 4],
  "Always Sensitive": [1, 4],
  Extractable: [1, 4],
  "Never Extractable": [1, 4],
  "Original Creation Date": [1, 3],
  "Random Number Generator": [1, 3],
  "Key Format Type": [2, 0],
  "Short Unique Identifier": [2, 0],
  "Protection Storage Masks": [2, 0],
  "Protection Storage Mask": [2, 0],
};

/** True when the attribute exists in the protocol version. */
export function attributeInVersion(name: string, major: number, minor: number): boolean {
  // The name components of a certificate are separate attributes only in 2.x.
  if (isCertificateNameComponent(name)) return major >= 2;
  const since = ATTRIBUTE_SINCE[name];
  return since === undefined || major > since[0] || (major === since[0] && minor >= since[1]);
}

export function isMultiValued(name: string): boolean {
  return MULTI_VALUED.has(name);
}

export function isCustom(name: string): boolean {
  return name.startsWith("x-") || name.startsWith("y-") || tagForAttributeName(name) === undefined;
}

/** Checks that a client may change the attribute after creation. */
export function checkClientModifiable(name: string): void {
  if (SERVER_ONLY.has(name) || isCertificateNameComponent(name)) {
    throw new KmipOperationError("AttributeReadOnly", `attribute ${name} is set by the server`);
  }
}

/** Checks that a client may give the attribute when creating or registering. */
export function checkClientSettableAtCreation(name: string): void {
  if (SERVER_SET_AT_CREATION.has(name)) {
    throw new KmipOperationError("AttributeReadOnly", `attribute ${name} is set by the server`);
  }
}

function attributeValue(item: KmipItem): KmipItem {
  return retag(item, tag("AttributeValue"));
}

/**
 * Reads a 1.x Attribute structure, or a 2.x custom Attribute structure, and
 * checks the value's form. Without an Attribute Value (as in a 1.x Delete
 * Attribute) the value is an empty structure and is not checked.
 */
export function parseAttributeStructure(item: KmipItem): KmipAttribute & { index?: number } {
  const attribute = asStructure(item, "Attribute");
  const nameItem = child(attribute, "AttributeName");
  if (nameItem === undefined) throw invalidField("Attribute Name is missing");
  if (textOf(nameItem).length === 0) throw invalidField("Attribute Name is empty");
  const vendor = child(attribute, "VendorIdentification");
  const name = customName(vendor === undefined ? undefined : textOf(vendor), textOf(nameItem));
  const value = child(attribute, "AttributeValue");
  const index = optionalInteger(attribute, "AttributeIndex");
  if (value === undefined) {
    return { name, value: struct("AttributeValue", []), ...(index === undefined ? {} : { index }) };
  }
  checkAttributeValue(name, value);
  return { name, value: attributeValue(value), ...(index === undefined ? {} : { index }) };
}

/**
 * Reads one attribute in 2.x form, an item tagged with the attribute's tag
 * or a custom Attribute, and checks the value's form.
 */
export function parseTaggedAttribute(item: KmipItem): KmipAttribute {
  if (item.tag === tag("Attribute")) return parseAttributeStructure(item);
  const info = tagInfo(item.tag);
  if (info === undefined) throw invalidField(`${tagDisplayName(item.tag)} is not an attribute`);
  checkAttributeValue(info.specName, item);
  return { name: info.specName, value: attributeValue(item) };
}

/**
 * Reads the attributes of a request container: a 1.x Template-Attribute
 * (Attribute children) or a 2.x Attributes structure (tagged children).
 */
export function parseAttributeContainer(container: KmipItem | undefined): KmipAttribute[] {
  if (container === undefined) return [];
  const structure = asStructure(container, tagDisplayName(container.tag));
  const attributes: KmipAttribute[] = [];
  for (const item of structure.value) {
    if (item.tag === tag("Name") && TEMPLATE_CONTAINERS.has(tagDisplayName(structure.tag))) {
      // NOTE: a 1.x Template-Attribute may name a server-side template; templates are not supported.
      throw new KmipOperationError("ItemNotFound", "templates are not supported");
    }
    attributes.push(
      item.tag === tag("Attribute") ? parseAttributeStructure(item) : parseTaggedAttribute(item),
    );
  }
  return attributes;
}

/**
 * Joins a 2.x custom attribute's Vendor Identification and Attribute Name
 * into the 1.x name: vendor "x" and name "ID" are the 1.x attribute "x-ID".
 */
export function customName(vendor: string | undefined, name: string): string {
  return vendor === undefined ? name : `${vendor}-${name}`;
}

/** Splits a custom attribute's 1.x name into the 2.x Vendor Identification and Attribute Name. */
export function splitCustomName(name: string): { vendor: string; name: string } {
  const dash = name.indexOf("-");
  if (dash <= 0) return { vendor: "x", name };
  return { vendor: name.slice(0, dash), name: name.slice(dash + 1) };
}

/** Renders one attribute for the protocol version. */
export function renderAttribute(attribute: KmipAttribute, major: number): KmipItem {
  const attributeTag = isCustom(attribute.name) ? undefined : tagForAttributeName(attribute.name);
  if (major < 2)
    return struct("Attribute", [text("AttributeName", attribute.name), attribute.value]);
  if (attributeTag !== undefined) return retag(attribute.value, attributeTag);
  const custom = splitCustomName(attribute.name);
  return struct("Attribute", [
    text("VendorIdentification", custom.vendor),
    text("AttributeName", custom.name),
    attribute.value,
  ]);
}

/** Renders a list of attributes: 1.x Attribute structures, or one 2.x structure with the tag name given. */
export function renderAttributes(
  attributes: readonly KmipAttribute[],
  major: number,
  containerName = "Attributes",
): KmipItem[] {
  const rendered = attributes.map((attribute) => renderAttribute(attribute, major));
  return major >= 2 ? [struct(containerName, rendered)] : rendered;
}

/** Reads the attribute names of a 1.x Attribute Name or 2.x Attribute Reference list. */
export function parseAttributeReferences(payload: StructureItem): string[] {
  const names: string[] = [];
  for (const item of payload.value) {
    if (item.tag === tag("AttributeName")) names.push(textOf(item));
    if (item.tag === tag("AttributeReference")) {
      if (item.type === "Enumeration") {
        const info = tagInfo(item.value);
        if (info === undefined) throw invalidField("Attribute Reference names an unknown tag");
        names.push(info.specName);
      } else if (item.type === "Structure") {
        const name = child(item, "AttributeName");
        if (name === undefined) throw invalidField("Attribute Reference has no Attribute Name");
        const vendor = child(item, "VendorIdentification");
        names.push(customName(vendor === undefined ? undefined : textOf(vendor), textOf(name)));
      }
    }
  }
  return names;
}
