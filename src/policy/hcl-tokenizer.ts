/**
 * The tokenizer of the policy parser (see `hcl.ts`): splits HCL or JSON
 * policy text into punctuation, strings, numbers and identifiers, skipping
 * whitespace and `#`, `//` and `/* … *\/` comments.
 */
import { KeywardError } from "../errors.ts";

/** A 1-based line and column in the policy text. Columns count UTF-16 code units. */
export interface Position {
  line: number;
  column: number;
}

/** Returns an `invalid_policy` error whose message names the line and column, which also go to `details`. */
export function policyError(position: Position, problem: string): KeywardError {
  return new KeywardError(
    "invalid_policy",
    `invalid policy at line ${position.line}, column ${position.column}: ${problem}`,
    { field: "policy", details: { line: position.line, column: position.column } },
  );
}

export type TokenType =
  | "{"
  | "}"
  | "["
  | "]"
  | "="
  | ":"
  | ","
  | "string"
  | "number"
  | "identifier"
  | "end";

export interface Token {
  type: TokenType;
  /** The string's decoded value, the identifier, or the number's text. */
  text: string;
  position: Position;
}

const PUNCTUATION = new Set(["{", "}", "[", "]", "=", ":", ","]);
const NUMBER_PATTERN = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const IDENTIFIER_PATTERN = /[A-Za-z_][A-Za-z0-9_.-]*/y;
const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

export function describeToken(token: Token): string {
  switch (token.type) {
    case "end":
      return "the end of the policy";
    case "string":
      return `the string ${JSON.stringify(token.text)}`;
    case "number":
      return `the number ${token.text}`;
    case "identifier":
      return `"${token.text}"`;
    default:
      return `"${token.type}"`;
  }
}

/** Splits the text into tokens, skipping whitespace and comments. */
export class Tokenizer {
  readonly #text: string;
  #index = 0;
  #line = 1;
  #lineStart = 0;

  constructor(text: string) {
    this.#text = text;
  }

  #position(index = this.#index): Position {
    return { line: this.#line, column: index - this.#lineStart + 1 };
  }

  #advance(count: number): void {
    for (let i = 0; i < count; i += 1) {
      if (this.#text[this.#index] === "\n") {
        this.#line += 1;
        this.#lineStart = this.#index + 1;
      }
      this.#index += 1;
    }
  }

  #skipWhitespaceAndComments(): void {
    const text = this.#text;
    while (this.#index < text.length) {
      const char = text[this.#index]!;
      if (char === " " || char === "\t" || char === "\r" || char === "\n" || char === "\uFEFF") {
        this.#advance(1);
      } else if (char === "#" || (char === "/" && text[this.#index + 1] === "/")) {
        while (this.#index < text.length && text[this.#index] !== "\n") this.#advance(1);
      } else if (char === "/" && text[this.#index + 1] === "*") {
        const start = this.#position();
        const end = text.indexOf("*/", this.#index + 2);
        if (end === -1) throw policyError(start, "unterminated /* comment");
        this.#advance(end + 2 - this.#index);
      } else {
        return;
      }
    }
  }

  next(): Token {
    this.#skipWhitespaceAndComments();
    const text = this.#text;
    const position = this.#position();
    if (this.#index >= text.length) return { type: "end", text: "", position };

    const char = text[this.#index]!;
    if (PUNCTUATION.has(char)) {
      this.#advance(1);
      return { type: char as TokenType, text: char, position };
    }
    if (char === '"') return this.#string(position);
    if (char === "<" && text[this.#index + 1] === "<") {
      throw policyError(position, "heredoc strings are not supported; use a quoted string");
    }

    NUMBER_PATTERN.lastIndex = this.#index;
    const number = NUMBER_PATTERN.exec(text);
    if (number) {
      this.#advance(number[0].length);
      return { type: "number", text: number[0], position };
    }
    IDENTIFIER_PATTERN.lastIndex = this.#index;
    const identifier = IDENTIFIER_PATTERN.exec(text);
    if (identifier) {
      this.#advance(identifier[0].length);
      return { type: "identifier", text: identifier[0], position };
    }
    throw policyError(position, `unexpected character ${JSON.stringify(char)}`);
  }

  /** Reads a double-quoted string; the opening quote is at the current index. */
  #string(start: Position): Token {
    const text = this.#text;
    let value = "";
    this.#advance(1);
    while (true) {
      if (this.#index >= text.length) throw policyError(start, "unterminated string");
      const char = text[this.#index]!;
      if (char === '"') {
        this.#advance(1);
        return { type: "string", text: value, position: start };
      }
      if (char === "\n")
        throw policyError(start, "unterminated string: a string cannot span lines");
      if (char < " " && char !== "\t") {
        throw policyError(this.#position(), "control character in a string; escape it");
      }
      if (char !== "\\") {
        value += char;
        this.#advance(1);
        continue;
      }
      value += this.#escape();
    }
  }

  /** Decodes one escape sequence; the backslash is at the current index. */
  #escape(): string {
    const text = this.#text;
    const position = this.#position();
    const letter = text[this.#index + 1];
    const simple = letter === undefined ? undefined : SIMPLE_ESCAPES[letter];
    if (simple !== undefined) {
      this.#advance(2);
      return simple;
    }
    let digits = 0;
    if (letter === "u") digits = 4;
    else if (letter === "U") digits = 8;
    const hex = text.slice(this.#index + 2, this.#index + 2 + digits);
    if (digits === 0 || !new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) {
      throw policyError(position, `invalid escape sequence ${JSON.stringify(`\\${letter ?? ""}`)}`);
    }
    const codePoint = Number.parseInt(hex, 16);
    if (codePoint > 0x10ffff) {
      throw policyError(position, `invalid escape sequence: U+${hex} is not a Unicode code point`);
    }
    this.#advance(2 + digits);
    return String.fromCodePoint(codePoint);
  }
}
