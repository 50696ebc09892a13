/**
 * A minimal, strict XML reader for the KMIP XML encoding.
 *
 * KMIP XML uses only elements with attributes: every value sits in a `value`
 * attribute and structures hold child elements, with no text content. This
 * reader accepts that subset (plus an XML declaration, comments and
 * whitespace) and rejects the rest: text content, CDATA, DOCTYPE, processing
 * instructions and unknown entities. It never resolves external entities, so
 * no general-purpose parser is needed. Errors are KmipDecodeError with the
 * character offset.
 */
import { KmipDecodeError } from "./errors.ts";

export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Character offset of the element's `<`. */
  readonly offset: number;
}

export interface XmlReadOptions {
  /** Maximum document length in characters. */
  maxLength: number;
  /** Maximum element nesting depth; the root is depth 1. */
  maxDepth: number;
}

const NAME = /[A-Za-z_][A-Za-z0-9_.-]*/y;
const WHITESPACE = /[ \t\r\n]*/y;
const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

function fail(message: string, offset: number): never {
  throw new KmipDecodeError("InvalidMessage", `invalid XML: ${message}`, offset);
}

/** Reads a document with exactly one root element. */
export function readXmlDocument(text: string, options: XmlReadOptions): XmlElement {
  if (text.length > options.maxLength) {
    throw new KmipDecodeError(
      "InvalidMessage",
      `XML document exceeds ${options.maxLength} characters`,
    );
  }
  const reader = new XmlReader(text, options.maxDepth);
  return reader.readDocument();
}

class XmlReader {
  readonly #text: string;
  readonly #maxDepth: number;
  #position = 0;

  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
  }

  readDocument(): XmlElement {
    if (this.#text.startsWith("\uFEFF")) this.#position = 1;
    this.#skipWhitespace();
    if (this.#text.startsWith("<?xml", this.#position)) {
      const end = this.#text.indexOf("?>", this.#position);
      if (end < 0) fail("unterminated XML declaration", this.#position);
      this.#position = end + 2;
    }
    this.#skipMisc();
    const root = this.#readElement(1);
    this.#skipMisc();
    if (this.#position !== this.#text.length)
      fail("content after the root element", this.#position);
    return root;
  }

  #skipWhitespace(): void {
    WHITESPACE.lastIndex = this.#position;
    WHITESPACE.exec(this.#text);
    this.#position = WHITESPACE.lastIndex;
  }

  /** Skips whitespace and comments. */
  #skipMisc(): void {
    for (;;) {
      this.#skipWhitespace();
      if (!this.#text.startsWith("<!--", this.#position)) return;
      const end = this.#text.indexOf("-->", this.#position + 4);
      if (end < 0) fail("unterminated comment", this.#position);
      this.#position = end + 3;
    }
  }

  #readName(): string {
    NAME.lastIndex = this.#position;
    const match = NAME.exec(this.#text);
    if (match === null) fail("expected a name", this.#position);
    this.#position = NAME.lastIndex;
    return match[0];
  }

  #readElement(depth: number): XmlElement {
    const offset = this.#position;
    if (depth > this.#maxDepth) fail(`elements nest deeper than ${this.#maxDepth}`, offset);
    if (this.#text[offset] !== "<") fail("expected an element", offset);
    this.#position++;
    const name = this.#readName();
    const attributes = this.#readAttributes();
    if (this.#text.startsWith("/>", this.#position)) {
      this.#position += 2;
      return { name, attributes, children: [], offset };
    }
    if (this.#text[this.#position] !== ">") fail(`malformed start tag <${name}>`, this.#position);
    this.#position++;
    const children: XmlElement[] = [];
    for (;;) {
      this.#skipMisc();
      if (this.#position >= this.#text.length) fail(`element <${name}> is not closed`, offset);
      if (this.#text.startsWith("</", this.#position)) break;
      if (this.#text[this.#position] !== "<") fail("text content is not allowed", this.#position);
      if (this.#text[this.#position + 1] === "!" || this.#text[this.#position + 1] === "?") {
        fail("CDATA, DOCTYPE and processing instructions are not allowed", this.#position);
      }
      children.push(this.#readElement(depth + 1));
    }
    this.#position += 2;
    const closing = this.#readName();
    if (closing !== name) fail(`</${closing}> does not close <${name}>`, this.#position);
    this.#skipWhitespace();
    if (this.#text[this.#position] !== ">") fail("malformed end tag", this.#position);
    this.#position++;
    return { name, attributes, children, offset };
  }

  #readAttributes(): Map<string, string> {
    const attributes = new Map<string, string>();
    for (;;) {
      const before = this.#position;
      this.#skipWhitespace();
      const next = this.#text[this.#position];
      if (next === ">" || next === "/" || next === undefined) return attributes;
      if (this.#position === before)
        fail("expected whitespace before an attribute", this.#position);
      const name = this.#readName();
      this.#skipWhitespace();
      if (this.#text[this.#position] !== "=")
        fail(`attribute ${name} has no value`, this.#position);
      this.#position++;
      this.#skipWhitespace();
      const quote = this.#text[this.#position];
      if (quote !== '"' && quote !== "'")
        fail(`attribute ${name} value is not quoted`, this.#position);
      const end = this.#text.indexOf(quote, this.#position + 1);
      if (end < 0) fail(`attribute ${name} value is not terminated`, this.#position);
      if (attributes.has(name)) fail(`attribute ${name} is repeated`, this.#position);
      attributes.set(
        name,
        decodeAttributeValue(this.#text.slice(this.#position + 1, end), this.#position + 1),
      );
      this.#position = end + 1;
    }
  }
}

/** An entity or character reference at an `&`, read with lastIndex set to its position. */
const REFERENCE = /&([^&;<]{0,16});/y;
/** The characters that decodeAttributeValue replaces. */
const SPECIAL = /[&\t\n\r]/g;

/**
 * Replaces entity and character references and normalizes literal whitespace,
 * as XML 1.0 does. Character references to control characters, which XML 1.0
 * forbids, are accepted so that every KMIP Text String written by
 * escapeAttributeValue reads back unchanged. The loop reads each character
 * once and stops at the first error, because a `replace` with a pattern that
 * searches ahead for `;` runs in time quadratic in the number of `&`.
 */
function decodeAttributeValue(raw: string, offset: number): string {
  if (raw.includes("<")) fail("'<' in an attribute value", offset + raw.indexOf("<"));
  let decoded = "";
  let copied = 0;
  SPECIAL.lastIndex = 0;
  for (let match = SPECIAL.exec(raw); match !== null; match = SPECIAL.exec(raw)) {
    const index = match.index;
    decoded += raw.slice(copied, index);
    if (match[0] !== "&") {
      decoded += " ";
      copied = index + 1;
      continue;
    }
    REFERENCE.lastIndex = index;
    const reference = REFERENCE.exec(raw)?.[1];
    if (reference === undefined) fail("'&' that starts no reference", offset + index);
    decoded += resolveReference(reference, offset + index);
    copied = REFERENCE.lastIndex;
    SPECIAL.lastIndex = copied;
  }
  return decoded + raw.slice(copied);
}

/** Returns the text of a predefined entity or a character reference (`amp`, `#38`, `#x26`). */
function resolveReference(reference: string, offset: number): string {
  // Object.hasOwn, because `&constructor;` must not read Object.prototype.
  if (Object.hasOwn(PREDEFINED_ENTITIES, reference)) return PREDEFINED_ENTITIES[reference]!;
  const code = /^#x[0-9A-Fa-f]{1,6}$/.test(reference)
    ? Number.parseInt(reference.slice(2), 16)
    : /^#[0-9]{1,7}$/.test(reference)
      ? Number.parseInt(reference.slice(1), 10)
      : undefined;
  if (code === undefined || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
    fail(`unknown reference &${reference};`, offset);
  }
  return String.fromCodePoint(code);
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
};

/**
 * Escapes text for a double-quoted attribute value. Control characters become
 * character references so that tabs and line breaks survive the attribute
 * whitespace normalization of XML readers.
 */
export function escapeAttributeValue(value: string): string {
  let escaped = "";
  for (const character of value) {
    const code = character.charCodeAt(0);
    escaped += ESCAPES[character] ?? (code < 0x20 ? `&#${code};` : character);
  }
  return escaped;
}
