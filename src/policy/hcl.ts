/**
 * A parser, with its tokenizer in `hcl-tokenizer.ts`, for the part of HCL
 * (version 1) that Vault policies use and for the JSON form of the same
 * documents.
 *
 * Written by hand because no npm package fits. The HCL packages on npm
 * (@cdktf/hcl2json, hcl2-parser, hcl-to-json, js-hcl-parser) convert a
 * document to plain JSON values, which loses the line and column that an
 * `invalid_policy` error reports, and the first two read HCL 2, not the
 * HCL 1 that Vault parses policies with.
 *
 * Supported: `key = value` attributes, blocks with string labels
 * (`path "secret/*" { … }`), objects, lists (trailing comma allowed),
 * double-quoted strings with escapes, numbers, `true`/`false`, and `#`,
 * `//` and `/* … *\/` comments. A document that starts with `{` is read as
 * JSON, where `:` stands for `=` and `null` is a value. Heredoc strings are
 * not supported.
 */
import {
  describeToken,
  type Position,
  policyError,
  type Token,
  Tokenizer,
  type TokenType,
} from "./hcl-tokenizer.ts";

export type HclValue =
  | { type: "string"; value: string; position: Position }
  | { type: "number"; value: number; position: Position }
  | { type: "bool"; value: boolean; position: Position }
  | { type: "null"; position: Position }
  | { type: "list"; items: HclValue[]; position: Position }
  | HclObject;

export interface HclObject {
  type: "object";
  entries: HclEntry[];
  position: Position;
}

/** A block label, such as the path in `path "secret/*" { … }`. */
export interface HclLabel {
  value: string;
  position: Position;
}

/** One attribute (`key = value`) or block (`key "label" { … }`) of an object or document. */
export interface HclEntry {
  key: string;
  position: Position;
  labels: HclLabel[];
  value: HclValue;
}

/** Objects and lists nested deeper than this are rejected, so a hostile document cannot exhaust the stack. */
export const MAX_NESTING_DEPTH = 32;

/** Builds the syntax tree from the tokens: one token of lookahead, recursive descent. */
class Parser {
  readonly #tokens: Tokenizer;
  #current: Token;
  #depth = 0;

  constructor(text: string) {
    this.#tokens = new Tokenizer(text);
    this.#current = this.#tokens.next();
  }

  #take(): Token {
    const token = this.#current;
    this.#current = this.#tokens.next();
    return token;
  }

  #expect(type: TokenType, context: string): Token {
    if (this.#current.type !== type) {
      throw policyError(
        this.#current.position,
        `expected "${type}" ${context}, found ${describeToken(this.#current)}`,
      );
    }
    return this.#take();
  }

  #enter(position: Position): void {
    this.#depth += 1;
    if (this.#depth > MAX_NESTING_DEPTH) {
      throw policyError(
        position,
        `objects and lists are nested more than ${MAX_NESTING_DEPTH} deep`,
      );
    }
  }

  /** Parses the whole document: a body of entries, or one JSON object. */
  document(): HclEntry[] {
    const entries = this.#current.type === "{" ? this.#object().entries : this.#body("end");
    if (this.#current.type !== "end") {
      throw policyError(
        this.#current.position,
        `expected the end of the policy, found ${describeToken(this.#current)}`,
      );
    }
    return entries;
  }

  /** Parses entries until the closing token, which is left for the caller. Commas between entries are optional. */
  #body(closing: "}" | "end"): HclEntry[] {
    const entries: HclEntry[] = [];
    while (this.#current.type !== closing) {
      entries.push(this.#entry());
      if (this.#current.type === ",") this.#take();
    }
    return entries;
  }

  #entry(): HclEntry {
    const keyToken = this.#current;
    if (keyToken.type !== "string" && keyToken.type !== "identifier") {
      throw policyError(keyToken.position, `expected a key, found ${describeToken(keyToken)}`);
    }
    this.#take();
    const labels: HclLabel[] = [];
    while (this.#current.type === "string" || this.#current.type === "identifier") {
      const label = this.#take();
      labels.push({ value: label.text, position: label.position });
    }
    const key = keyToken.text;
    if (this.#current.type === "{") {
      return { key, position: keyToken.position, labels, value: this.#object() };
    }
    if (labels.length > 0) {
      throw policyError(
        this.#current.position,
        `expected "{" to open the block ${JSON.stringify(key)}, found ${describeToken(this.#current)}`,
      );
    }
    if (this.#current.type !== "=" && this.#current.type !== ":") {
      throw policyError(
        this.#current.position,
        `expected "=" or "{" after ${JSON.stringify(key)}, found ${describeToken(this.#current)}`,
      );
    }
    this.#take();
    return { key, position: keyToken.position, labels, value: this.#value() };
  }

  #object(): HclObject {
    const open = this.#expect("{", "to open an object");
    this.#enter(open.position);
    const entries = this.#body("}");
    this.#expect("}", "to close the object");
    this.#depth -= 1;
    return { type: "object", entries, position: open.position };
  }

  #list(): HclValue {
    const open = this.#expect("[", "to open a list");
    this.#enter(open.position);
    const items: HclValue[] = [];
    while (this.#current.type !== "]") {
      items.push(this.#value());
      if (this.#current.type !== ",") break;
      this.#take();
    }
    this.#expect("]", 'or "," in the list');
    this.#depth -= 1;
    return { type: "list", items, position: open.position };
  }

  #value(): HclValue {
    const token = this.#current;
    switch (token.type) {
      case "{":
        return this.#object();
      case "[":
        return this.#list();
      case "string":
        this.#take();
        return { type: "string", value: token.text, position: token.position };
      case "number":
        this.#take();
        return { type: "number", value: Number(token.text), position: token.position };
      case "identifier":
        if (token.text === "true" || token.text === "false") {
          this.#take();
          return { type: "bool", value: token.text === "true", position: token.position };
        }
        if (token.text === "null") {
          this.#take();
          return { type: "null", position: token.position };
        }
        break;
      default:
        break;
    }
    throw policyError(token.position, `expected a value, found ${describeToken(token)}`);
  }
}

/**
 * Parses HCL or JSON policy text into its top-level entries. Throws
 * `invalid_policy` with the line and column of the first syntax error.
 */
export function parseHcl(text: string): HclEntry[] {
  return new Parser(text).document();
}
