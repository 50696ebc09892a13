/**
 * Get Attributes, Get Attribute List, and Add, Modify, Delete and Set
 * Attribute. Every change also sets the Last Change Date.
 */
import type { KmipItem, StructureItem } from "../../item.ts";
import { itemsEqual } from "../../item.ts";
import { tagForAttributeName } from "../../tags.ts";
import {
  attributeInVersion,
  checkClientModifiable,
  isCustom,
  isMultiValued,
  type KmipAttribute,
  parseAttributeReferences,
  parseAttributeStructure,
  parseTaggedAttribute,
  renderAttribute,
  renderAttributes,
  splitCustomName,
} from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { invalidField, KmipOperationError, wrongState } from "../errors.ts";
import { asStructure, child, struct, tag, text } from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import {
  attributeScalar,
  dateAttribute,
  enumAttribute,
  replaceAttribute,
  stateOf,
  withProtectionHistory,
} from "../objects.ts";
import { checkProtectionChange } from "../protection-attributes.ts";
import { requestObject, requireUniqueNames, uidItem } from "./common.ts";

export async function getAttributes(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const names = parseAttributeReferences(payload);
  const { major, minor } = context.version;
  const selected = object.attributes.filter(
    (attribute) =>
      (names.length === 0 || names.includes(attribute.name)) &&
      attributeInVersion(attribute.name, major, minor),
  );
  return [uidItem(object.uid), ...renderAttributes(selected, context.version.major)];
}

export async function getAttributeList(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const { major, minor } = context.version;
  const names = [...new Set(object.attributes.map((attribute) => attribute.name))].filter((name) =>
    attributeInVersion(name, major, minor),
  );
  const items = names.map((name) => {
    const attributeTag = isCustom(name) ? undefined : tagForAttributeName(name);
    if (context.version.major < 2) return text("AttributeName", name);
    if (attributeTag !== undefined) {
      return {
        tag: tag("AttributeReference"),
        type: "Enumeration",
        value: attributeTag,
      } as KmipItem;
    }
    const custom = splitCustomName(name);
    return struct("AttributeReference", [
      text("VendorIdentification", custom.vendor),
      text("AttributeName", custom.name),
    ]);
  });
  return [uidItem(object.uid), ...items];
}

/** Reads the one attribute of an Add, Modify or Set Attribute request. */
function parseOne(
  payload: StructureItem,
  major: number,
  name: string,
): KmipAttribute & { index?: number } {
  if (major < 2) {
    const attribute = child(payload, "Attribute");
    if (attribute === undefined) throw invalidField("Attribute is missing");
    if (attribute.type === "Structure" && child(attribute, "AttributeValue") === undefined) {
      throw invalidField("Attribute Value is missing");
    }
    return parseAttributeStructure(attribute);
  }
  const wrapper = asStructure(child(payload, name), name);
  const inner = wrapper.value[0];
  if (inner === undefined || wrapper.value.length !== 1) {
    throw invalidField(`${name} must hold exactly one attribute`);
  }
  return parseTaggedAttribute(inner);
}

/** Reads the one attribute of a 2.x Current Attribute. */
function parseCurrentAttribute(item: KmipItem): KmipAttribute {
  const current = asStructure(item, "CurrentAttribute");
  const inner = current.value[0];
  if (inner === undefined || current.value.length !== 1) {
    throw invalidField("Current Attribute must contain exactly one attribute");
  }
  return parseTaggedAttribute(inner);
}

/**
 * Checks a client change to an attribute. The Activation Date may change
 * only while the object is Pre-Active; every other attribute the server
 * keeps is read-only.
 */
function checkChange(object: KmipObject, name: string): void {
  if (name === "Activation Date") {
    const state = stateOf(object);
    if (state !== "PreActive") {
      throw wrongState(`the Activation Date cannot change while the object is ${state}`);
    }
    return;
  }
  checkClientModifiable(name);
}

/** Stores a changed object; an Activation Date now due makes a Pre-Active object Active. */
async function save(object: KmipObject, context: OperationContext): Promise<void> {
  let updated = replaceAttribute(
    withProtectionHistory(object, false),
    "Last Change Date",
    dateAttribute("Last Change Date", context.now),
  );
  const activation = attributeScalar(updated, "Activation Date");
  if (
    stateOf(updated) === "PreActive" &&
    typeof activation === "bigint" &&
    activation <= context.now
  ) {
    updated = replaceAttribute(updated, "State", enumAttribute("State", "Active"));
  }
  await context.store.put(updated);
}

export async function addAttribute(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const attribute = parseOne(payload, context.version.major, "NewAttribute");
  checkChange(object, attribute.name);
  const existing = object.attributes.filter((item) => item.name === attribute.name);
  if (existing.length > 0 && !isMultiValued(attribute.name) && !isCustom(attribute.name)) {
    throw new KmipOperationError(
      "AttributeSingleValued",
      `attribute ${attribute.name} already has a value and takes only one`,
    );
  }
  const stored = { name: attribute.name, value: attribute.value };
  await requireUniqueNames(context, [stored]);
  await save({ ...object, attributes: [...object.attributes, stored] }, context);
  return context.version.major < 2
    ? [uidItem(object.uid), withIndex(stored, existing.length)]
    : [uidItem(object.uid)];
}

/** Renders a 1.x Attribute with its Attribute Index when it is not the first instance. */
function withIndex(attribute: KmipAttribute, index: number): KmipItem {
  const rendered = renderAttribute(attribute, 1);
  if (index === 0 || rendered.type !== "Structure") return rendered;
  const [name, ...rest] = rendered.value;
  return struct("Attribute", [
    name!,
    { tag: tag("AttributeIndex"), type: "Integer", value: index },
    ...rest,
  ]);
}

/** Finds the position in the object's attributes of the instance to change. */
function instancePosition(
  object: KmipObject,
  name: string,
  index: number | undefined,
  current: KmipItem | undefined,
): number {
  const positions = object.attributes
    .map((attribute, position) => ({ attribute, position }))
    .filter(({ attribute }) => attribute.name === name);
  let match: { position: number } | undefined;
  if (current !== undefined) {
    match = positions.find(({ attribute }) => itemsEqual(attribute.value, current));
  } else {
    match = positions[index ?? 0];
  }
  if (match === undefined) {
    throw new KmipOperationError("AttributeNotFound", `the object has no such ${name} attribute`);
  }
  return match.position;
}

export async function modifyAttribute(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const attribute = parseOne(payload, context.version.major, "NewAttribute");
  checkChange(object, attribute.name);
  let current: KmipItem | undefined;
  if (context.version.major >= 2) {
    const currentItem = child(payload, "CurrentAttribute");
    if (currentItem !== undefined) {
      current = parseCurrentAttribute(currentItem).value;
    }
  }
  const position = instancePosition(object, attribute.name, attribute.index, current);
  checkProtectionChange(object, attribute.name, attribute.value);
  const attributes = [...object.attributes];
  const stored = { name: attribute.name, value: attribute.value };
  await requireUniqueNames(context, [stored], object.uid);
  attributes[position] = stored;
  await save({ ...object, attributes }, context);
  return context.version.major < 2
    ? [uidItem(object.uid), withIndex(stored, attribute.index ?? 0)]
    : [uidItem(object.uid)];
}

export async function setAttribute(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const attribute = parseOne(payload, context.version.major, "NewAttribute");
  checkChange(object, attribute.name);
  if (isMultiValued(attribute.name)) {
    throw new KmipOperationError(
      "MultiValuedAttribute",
      `attribute ${attribute.name} takes several values; use Add or Modify Attribute`,
    );
  }
  checkProtectionChange(object, attribute.name, attribute.value);
  await save(
    replaceAttribute(object, attribute.name, { name: attribute.name, value: attribute.value }),
    context,
  );
  return [uidItem(object.uid)];
}

export async function deleteAttribute(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  let name: string;
  let index: number | undefined;
  let current: KmipItem | undefined;
  if (context.version.major < 2) {
    const nameItem = child(payload, "AttributeName");
    if (nameItem === undefined) throw invalidField("Attribute Name is missing");
    const parsed = parseAttributeStructure(
      struct("Attribute", [
        nameItem,
        ...payload.value.filter((item) => item.tag === tag("AttributeIndex")),
      ]),
    );
    name = parsed.name;
    index = parsed.index;
  } else {
    const currentItem = child(payload, "CurrentAttribute");
    if (currentItem !== undefined) {
      const parsed = parseCurrentAttribute(currentItem);
      name = parsed.name;
      current = parsed.value;
    } else {
      const names = parseAttributeReferences(payload);
      if (names.length !== 1) throw invalidField("Delete Attribute needs one Attribute Reference");
      name = names[0]!;
    }
  }
  checkChange(object, name);
  const position = instancePosition(object, name, index, current);
  checkProtectionChange(object, name, undefined);
  const removed = object.attributes[position]!;
  const attributes = object.attributes.filter((_, at) => at !== position);
  await save({ ...object, attributes }, context);
  return context.version.major < 2
    ? [uidItem(object.uid), withIndex(removed, index ?? 0)]
    : [uidItem(object.uid)];
}
