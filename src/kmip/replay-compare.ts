/**
 * Comparison of an actual KMIP response with the expected response of a
 * conformance case.
 *
 * Placeholders in the expected response bind to the actual values the first
 * time they appear (`$UNIQUE_IDENTIFIER_0` captures the server's identifier),
 * and identifier placeholders must hold the same value wherever they appear
 * later. Time placeholders (`$NOW`, `$NOW-3600`) accept any time inside the
 * window the caller gives. Items whose value the server chooses (see
 * DEFAULT_VARIABLE_TAGS) are compared by type only. The first difference is
 * reported with its tag path.
 */
import {
  isPlaceholder,
  type KmipItem,
  type PlaceholderItem,
  type ScalarItem,
  type TemplateItem,
} from "./item.ts";
import { tagByName, tagDisplayName } from "./tags.ts";
import { contextForTag, formatScalarText } from "./text-values.ts";

/** The first difference between an expected and an actual response. */
export interface ResponseMismatch {
  /** Tag path of the item, such as "ResponseMessage/BatchItem/ResultStatus". */
  readonly path: string;
  /** Description of the difference. */
  readonly reason: string;
}

/** Values captured for placeholders, by placeholder name without any time offset. */
export type PlaceholderBindings = Map<string, ScalarItem>;

export interface CompareOptions {
  /** Tags whose values the server chooses; their items are compared by type only. */
  variableTags?: readonly string[];
  /** Structures whose children may come in any order (2.x attribute sets). */
  unorderedTags?: readonly string[];
  /** Tags whose consecutive repeats may come in any order, such as the Attribute items of Get Attributes. */
  unorderedRepeatedTags?: readonly string[];
  /** Bindings to use and extend; a fresh map when omitted. */
  bindings?: PlaceholderBindings;
  /** The accepted window for `$NOW` (offsets are added to both ends), in seconds since the epoch. */
  timeWindow?: { earliest: bigint; latest: bigint };
}

/**
 * Server-chosen items: identifiers, clocks, correlation values, free text,
 * and outputs of random keys and random IVs. Outputs the case fixes through a
 * registered key (Data of Encrypt and Decrypt) stay strict.
 */
export const DEFAULT_VARIABLE_TAGS: readonly string[] = [
  "UniqueIdentifier",
  "PrivateKeyUniqueIdentifier",
  "PublicKeyUniqueIdentifier",
  "LinkedObjectIdentifier",
  "ShortUniqueIdentifier",
  "TimeStamp",
  "InitialDate",
  "LastChangeDate",
  "OriginalCreationDate",
  "ResultMessage",
  "VendorIdentification",
  "ServerInformation",
  "ServerCorrelationValue",
  "AsynchronousCorrelationValue",
  "CorrelationValue",
  "KeyMaterial",
  "KeyValue",
  "DigestValue",
  "IVCounterNonce",
  "AuthenticatedEncryptionTag",
  "MACData",
  "SignatureData",
];

export const DEFAULT_UNORDERED_TAGS: readonly string[] = [
  "Attributes",
  "CommonAttributes",
  "PrivateKeyAttributes",
  "PublicKeyAttributes",
];

export const DEFAULT_UNORDERED_REPEATED_TAGS: readonly string[] = [
  "Attribute",
  "AttributeName",
  "AttributeReference",
  "UniqueIdentifier",
  "Operation",
  "ObjectType",
];

/** Placeholders that name an object; once bound they must match wherever they recur. */
const IDENTIFIER_PLACEHOLDER = /^\$(?:SHORT_)?UNIQUE_IDENTIFIER_\d+$/;
const TIME_PLACEHOLDER = /^\$NOW(?:([+-])(\d+))?$/;

/** Splits `$NOW-3600` into its name and offset in seconds. */
export function parseTimePlaceholder(placeholder: string): bigint | undefined {
  const match = TIME_PLACEHOLDER.exec(placeholder);
  if (match === null) return undefined;
  if (match[1] === undefined) return 0n;
  return (match[1] === "-" ? -1n : 1n) * BigInt(match[2]!);
}

function tagSet(names: readonly string[]): ReadonlySet<number> {
  const tags = new Set<number>();
  for (const name of names) {
    const tag = tagByName(name);
    if (tag !== undefined) tags.add(tag);
  }
  return tags;
}

function describe(item: TemplateItem): string {
  if (isPlaceholder(item)) return item.placeholder;
  if (item.type === "Structure") return `Structure of ${item.value.length} items`;
  const text = formatScalarText(item as ScalarItem, contextForTag(item.tag));
  return text.length > 48 ? `${text.slice(0, 48)}…` : text;
}

/**
 * Compares an actual response with the expected one and returns the first
 * mismatch, or undefined when they agree. Bindings made by a failed
 * comparison are discarded.
 */
export function compareResponse(
  expected: TemplateItem,
  actual: KmipItem,
  options: CompareOptions = {},
): ResponseMismatch | undefined {
  const comparator = new Comparator(options);
  const bindings = options.bindings ?? new Map();
  const trial = new Map(bindings);
  const mismatch = comparator.compare(expected, actual, tagDisplayName(expected.tag), trial);
  if (mismatch === undefined) {
    for (const [name, value] of trial) bindings.set(name, value);
  }
  return mismatch;
}

class Comparator {
  readonly #variable: ReadonlySet<number>;
  readonly #unordered: ReadonlySet<number>;
  readonly #unorderedRepeated: ReadonlySet<number>;
  readonly #timeWindow: { earliest: bigint; latest: bigint } | undefined;

  constructor(options: CompareOptions) {
    this.#variable = tagSet(options.variableTags ?? DEFAULT_VARIABLE_TAGS);
    this.#unordered = tagSet(options.unorderedTags ?? DEFAULT_UNORDERED_TAGS);
    this.#unorderedRepeated = tagSet(
      options.unorderedRepeatedTags ?? DEFAULT_UNORDERED_REPEATED_TAGS,
    );
    this.#timeWindow = options.timeWindow;
  }

  compare(
    expected: TemplateItem,
    actual: KmipItem,
    path: string,
    bindings: PlaceholderBindings,
  ): ResponseMismatch | undefined {
    if (expected.tag !== actual.tag) {
      return {
        path,
        reason: `expected tag ${tagDisplayName(expected.tag)}, got ${tagDisplayName(actual.tag)}`,
      };
    }
    if (expected.type !== actual.type)
      return { path, reason: `expected type ${expected.type}, got ${actual.type}` };
    if (isPlaceholder(expected))
      return this.#comparePlaceholder(expected, actual as ScalarItem, path, bindings);
    if (expected.type === "Structure" && actual.type === "Structure") {
      return this.#compareChildren(expected.value, actual.value, expected.tag, path, bindings);
    }
    if (this.#variable.has(expected.tag)) return undefined;
    if (sameScalar(expected as ScalarItem, actual as ScalarItem)) return undefined;
    return { path, reason: `expected ${describe(expected)}, got ${describe(actual)}` };
  }

  #comparePlaceholder(
    expected: PlaceholderItem,
    actual: ScalarItem,
    path: string,
    bindings: PlaceholderBindings,
  ): ResponseMismatch | undefined {
    const offset = parseTimePlaceholder(expected.placeholder);
    if (offset !== undefined) {
      if (this.#timeWindow === undefined || actual.type !== "DateTime") return undefined;
      const earliest = this.#timeWindow.earliest + offset;
      const latest = this.#timeWindow.latest + offset;
      if (actual.value >= earliest && actual.value <= latest) return undefined;
      return {
        path,
        reason: `${describe(actual)} is outside the window of ${expected.placeholder}`,
      };
    }
    const bound = bindings.get(expected.placeholder);
    if (
      bound !== undefined &&
      IDENTIFIER_PLACEHOLDER.test(expected.placeholder) &&
      !sameScalar(bound, actual)
    ) {
      return {
        path,
        reason: `${expected.placeholder} is ${describe(bound)}, got ${describe(actual)}`,
      };
    }
    bindings.set(expected.placeholder, actual);
    return undefined;
  }

  #compareChildren(
    expected: readonly TemplateItem[],
    actual: readonly KmipItem[],
    parentTag: number,
    path: string,
    bindings: PlaceholderBindings,
  ): ResponseMismatch | undefined {
    if (this.#unordered.has(parentTag))
      return this.#matchUnordered(expected, actual, path, bindings);
    let position = 0;
    while (position < expected.length) {
      const tag = expected[position]!.tag;
      let runEnd = position + 1;
      while (
        this.#unorderedRepeated.has(tag) &&
        runEnd < expected.length &&
        expected[runEnd]!.tag === tag
      ) {
        runEnd++;
      }
      if (runEnd - position > 1) {
        const actualRun = actual.slice(position, runEnd);
        if (actualRun.length < runEnd - position || actualRun.some((item) => item.tag !== tag)) {
          return {
            path: `${path}/${tagDisplayName(tag)}`,
            reason: `expected ${runEnd - position} items in a row`,
          };
        }
        const mismatch = this.#matchUnordered(
          expected.slice(position, runEnd),
          actualRun,
          path,
          bindings,
        );
        if (mismatch !== undefined) return mismatch;
      } else {
        const childPath = `${path}/${childName(expected, position)}`;
        const actualChild = actual[position];
        if (actualChild === undefined) return { path: childPath, reason: "missing item" };
        const mismatch = this.compare(expected[position]!, actualChild, childPath, bindings);
        if (mismatch !== undefined) return mismatch;
      }
      position = runEnd;
    }
    if (actual.length > expected.length) {
      return {
        path: `${path}/${tagDisplayName(actual[expected.length]!.tag)}`,
        reason: "unexpected item",
      };
    }
    return undefined;
  }

  /** Matches each expected item with a distinct actual item, first fit in expected order. */
  #matchUnordered(
    expected: readonly TemplateItem[],
    actual: readonly KmipItem[],
    path: string,
    bindings: PlaceholderBindings,
  ): ResponseMismatch | undefined {
    const used = new Set<number>();
    for (const [index, item] of expected.entries()) {
      const childPath = `${path}/${childName(expected, index)}`;
      let firstMismatch: ResponseMismatch | undefined;
      let matched = false;
      for (const [candidateIndex, candidate] of actual.entries()) {
        if (used.has(candidateIndex) || candidate.tag !== item.tag) continue;
        const trial = new Map(bindings);
        const mismatch = this.compare(item, candidate, childPath, trial);
        if (mismatch === undefined) {
          for (const [name, value] of trial) bindings.set(name, value);
          used.add(candidateIndex);
          matched = true;
          break;
        }
        firstMismatch ??= mismatch;
      }
      if (!matched) return firstMismatch ?? { path: childPath, reason: "missing item" };
    }
    const extra = actual.findIndex((_, index) => !used.has(index));
    if (extra >= 0)
      return { path: `${path}/${tagDisplayName(actual[extra]!.tag)}`, reason: "unexpected item" };
    return undefined;
  }
}

/** Names a child for a path: the tag, with its index among siblings of that tag when it repeats. */
function childName(siblings: readonly TemplateItem[], index: number): string {
  const tag = siblings[index]!.tag;
  const sameTag = siblings.filter((item) => item.tag === tag);
  if (sameTag.length === 1) return tagDisplayName(tag);
  return `${tagDisplayName(tag)}[${sameTag.indexOf(siblings[index]!)}]`;
}

function sameScalar(left: ScalarItem, right: ScalarItem): boolean {
  if (left.type !== right.type) return false;
  if (left.value instanceof Uint8Array && right.value instanceof Uint8Array) {
    return Buffer.from(left.value).equals(right.value);
  }
  return left.value === right.value;
}
