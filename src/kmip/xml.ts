/**
 * The KMIP XML encoding (KMIP Profiles, XML encoding), mapped to the same
 * item tree as TTLV.
 *
 * Each item is an element named after its tag ("UniqueIdentifier"), or
 * `<TTLV tag="0x540001" …>` for a tag the registry has no name for. Scalars
 * carry `type` and `value` attributes; an element without `type` is a
 * Structure whose items are its child elements. In KMIP 1.x an Attribute
 * Value's enumeration or mask is that of the tag its sibling Attribute Name
 * stands for, so `<AttributeValue type="Enumeration" value="AES"/>` reads as
 * Cryptographic Algorithm AES.
 */
import { KmipDecodeError } from "./errors.ts";
import { isPlaceholder, type KmipItem, type ScalarItem, type TemplateItem } from "./item.ts";
import {
  formatTagHex,
  isItemType,
  isTagInValidRange,
  tagByName,
  tagInfo,
  tagNumber,
} from "./tags.ts";
import {
  contextForAttributeName,
  contextForTag,
  formatScalarText,
  parseScalarText,
  type ValueContext,
} from "./text-values.ts";
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_BYTES } from "./ttlv.ts";
import { escapeAttributeValue, readXmlDocument, type XmlElement } from "./xml-tokenizer.ts";

export interface XmlDecodeOptions {
  /** Maximum document length in characters. Default 1 MiB, as for TTLV. */
  maxLength?: number;
  /** Maximum element nesting depth; the root is depth 1. Default 32, as for TTLV. */
  maxDepth?: number;
}

/** Element name for items whose tag has no registry name. */
const UNNAMED_TAG_ELEMENT = "TTLV";
/** Values written `$NAME`, `$NAME_3` or `$NOW-3600` in the conformance cases. */
export const PLACEHOLDER_PATTERN = /^\$[A-Z][A-Z0-9_]*(?:[+-]\d+)?$/;

const ATTRIBUTE_NAME_TAG = tagNumber("AttributeName");
const ATTRIBUTE_VALUE_TAG = tagNumber("AttributeValue");

function readOptions(options: XmlDecodeOptions) {
  return {
    maxLength: options.maxLength ?? DEFAULT_MAX_MESSAGE_BYTES,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
  };
}

/** Decodes one KMIP message (or any single item) from XML. */
export function decodeXml(text: string, options: XmlDecodeOptions = {}): KmipItem {
  const root = readXmlDocument(text, readOptions(options));
  return new ItemBuilder(false).build(root, {}) as KmipItem;
}

/**
 * Decodes a conformance case file: a `<KMIP>` element whose children are
 * messages, or a single message. Values written as placeholders
 * (`$UNIQUE_IDENTIFIER_0`, `$NOW`) become placeholder items.
 */
export function decodeXmlTemplates(text: string, options: XmlDecodeOptions = {}): TemplateItem[] {
  const root = readXmlDocument(text, readOptions(options));
  const builder = new ItemBuilder(true);
  const elements = root.name === "KMIP" && !root.attributes.has("type") ? root.children : [root];
  return elements.map((element) => builder.build(element, {}));
}

class ItemBuilder {
  readonly #placeholders: boolean;

  constructor(placeholders: boolean) {
    this.#placeholders = placeholders;
  }

  build(element: XmlElement, context: ValueContext): TemplateItem {
    const tag = this.#tag(element);
    for (const name of element.attributes.keys()) {
      const allowed =
        name === "type" ||
        name === "value" ||
        (name === "tag" && element.name === UNNAMED_TAG_ELEMENT);
      if (!allowed) throw fieldError(`unknown attribute "${name}"`, element);
    }
    const type = element.attributes.get("type") ?? "Structure";
    if (!isItemType(type)) throw fieldError(`unknown type "${type}"`, element);
    const value = element.attributes.get("value");
    if (type === "Structure") {
      if (value !== undefined) throw fieldError("a Structure has no value attribute", element);
      return { tag, type, value: this.#children(element) };
    }
    if (element.children.length > 0) throw fieldError(`a ${type} has no child elements`, element);
    if (value === undefined) throw fieldError(`${type} has no value attribute`, element);
    if (this.#placeholders && PLACEHOLDER_PATTERN.test(value))
      return { tag, type, placeholder: value };
    const itemContext = tag === ATTRIBUTE_VALUE_TAG ? context : contextForTag(tag);
    try {
      return parseScalarText(tag, type, value, itemContext);
    } catch (error) {
      if (error instanceof KmipDecodeError) throw fieldError(error.message, element);
      throw error;
    }
  }

  #tag(element: XmlElement): number {
    if (element.name !== UNNAMED_TAG_ELEMENT) {
      const tag = tagByName(element.name);
      if (tag === undefined) throw fieldError(`unknown tag <${element.name}>`, element);
      return tag;
    }
    const text = element.attributes.get("tag") ?? "";
    const tag = /^0x[0-9A-Fa-f]{6}$/.test(text) ? Number(text) : undefined;
    if (tag === undefined || !isTagInValidRange(tag))
      throw fieldError(`invalid tag "${text}"`, element);
    return tag;
  }

  #children(element: XmlElement): TemplateItem[] {
    let attributeName: string | undefined;
    return element.children.map((child) => {
      const item = this.build(child, contextForAttributeName(attributeName));
      if (item.tag === ATTRIBUTE_NAME_TAG && item.type === "TextString" && !isPlaceholder(item)) {
        attributeName = item.value as string;
      }
      return item;
    });
  }
}

function fieldError(message: string, element: XmlElement): KmipDecodeError {
  return new KmipDecodeError("InvalidField", `<${element.name}>: ${message}`, element.offset);
}

/** Encodes an item tree as KMIP XML, two spaces of indent per level. */
export function encodeXml(item: TemplateItem): string {
  const lines: string[] = [];
  writeElement(item, {}, 0, lines);
  return `${lines.join("\n")}\n`;
}

function elementStart(tag: number): string {
  const info = tagInfo(tag);
  return info === undefined ? `${UNNAMED_TAG_ELEMENT} tag="${formatTagHex(tag)}"` : info.name;
}

function writeElement(
  item: TemplateItem,
  context: ValueContext,
  depth: number,
  lines: string[],
): void {
  const indent = "  ".repeat(depth);
  const start = elementStart(item.tag);
  if (isPlaceholder(item)) {
    lines.push(
      `${indent}<${start} type="${item.type}" value="${escapeAttributeValue(item.placeholder)}"/>`,
    );
    return;
  }
  if (item.type !== "Structure") {
    const itemContext = item.tag === ATTRIBUTE_VALUE_TAG ? context : contextForTag(item.tag);
    const text = formatScalarText(item as ScalarItem, itemContext);
    lines.push(`${indent}<${start} type="${item.type}" value="${escapeAttributeValue(text)}"/>`);
    return;
  }
  if (item.value.length === 0) {
    lines.push(`${indent}<${start}/>`);
    return;
  }
  lines.push(`${indent}<${start}>`);
  let attributeName: string | undefined;
  for (const child of item.value) {
    writeElement(child, contextForAttributeName(attributeName), depth + 1, lines);
    if (child.tag === ATTRIBUTE_NAME_TAG && child.type === "TextString" && !isPlaceholder(child)) {
      attributeName = child.value as string;
    }
  }
  lines.push(`${indent}</${start.split(" ")[0]}>`);
}
