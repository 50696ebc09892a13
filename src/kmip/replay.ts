/**
 * The core of the conformance replay runner: a case file becomes a list of
 * (request, expected response) steps, and a session binds placeholders from
 * the real server's responses.
 *
 * Placeholders in the OASIS cases, and how the session treats them:
 * - `$UNIQUE_IDENTIFIER_n`, `$SHORT_UNIQUE_IDENTIFIER_n`: captured from the
 *   first response that carries them, then sent in requests and required to
 *   match in later responses.
 * - `$NOW`, `$NOW-3600`, `$NOW+3600`: the current time plus the offset in
 *   seconds when sent in a request. In a response, any time from the
 *   session's start to the check matches, widened by the clock tolerance.
 * - `$DATA_n`, `$IV_COUNTER_NONCE`, `$AUTHENTICATED_ENCRYPTION_TAG`,
 *   `$CORRELATION_VALUE`, `$KEY_MATERIAL_n`, `$KEY_VALUE_n`,
 *   `$SIGNATURE_DATA`: captured from each response that carries them (the
 *   newest value wins) and sent in later requests.
 * - A request placeholder that no response has bound yet, such as `$MAC_DATA`
 *   after a MAC response with a literal MAC Data, takes the newest actual
 *   value of the same tag from an earlier response.
 */
import { KeywardError } from "../errors.ts";
import { isPlaceholder, type KmipItem, type ScalarItem, type TemplateItem } from "./item.ts";
import {
  type CompareOptions,
  compareResponse,
  type PlaceholderBindings,
  parseTimePlaceholder,
  type ResponseMismatch,
} from "./replay-compare.ts";
import { tagDisplayName, tagNumber } from "./tags.ts";
import { decodeXmlTemplates } from "./xml.ts";

/** One request of a case and the response it expects. */
export interface ReplayStep {
  /** Zero-based position of the step in its case. */
  readonly index: number;
  readonly request: TemplateItem;
  readonly expected: TemplateItem;
}

/** A parsed conformance case file. */
export interface KmipCase {
  readonly name: string;
  readonly steps: readonly ReplayStep[];
}

const REQUEST_MESSAGE = tagNumber("RequestMessage");
const RESPONSE_MESSAGE = tagNumber("ResponseMessage");

/**
 * Parses a case file (`<KMIP>` holding RequestMessage and ResponseMessage
 * elements in turn) into steps. A request without its response, or messages
 * out of turn, make the file invalid.
 */
export function parseKmipCase(name: string, xml: string): KmipCase {
  const messages = decodeXmlTemplates(xml);
  const steps: ReplayStep[] = [];
  for (let index = 0; index < messages.length; index += 2) {
    const request = messages[index]!;
    const expected = messages[index + 1];
    if (request.tag !== REQUEST_MESSAGE || expected?.tag !== RESPONSE_MESSAGE) {
      throw new KeywardError(
        "invalid_request",
        `case ${name}: message ${index} is not a RequestMessage followed by a ResponseMessage`,
      );
    }
    steps.push({ index: steps.length, request, expected });
  }
  return { name, steps };
}

export interface ReplaySessionOptions {
  /** The clock; tests pass a fixed one. */
  now?: () => Date;
  /** Seconds by which server times may fall outside the session's window. Default 60. */
  clockToleranceSeconds?: number;
  /** Comparison settings other than bindings and the time window. */
  compare?: Omit<CompareOptions, "bindings" | "timeWindow">;
}

/** Placeholder state for replaying one case against a server. */
export class ReplaySession {
  readonly #now: () => Date;
  readonly #tolerance: bigint;
  readonly #compare: Omit<CompareOptions, "bindings" | "timeWindow">;
  readonly #started: bigint;
  readonly #bindings: PlaceholderBindings = new Map();
  readonly #latestByTag = new Map<number, ScalarItem>();

  constructor(options: ReplaySessionOptions = {}) {
    this.#now = options.now ?? (() => new Date());
    this.#tolerance = BigInt(options.clockToleranceSeconds ?? 60);
    this.#compare = options.compare ?? {};
    this.#started = this.#seconds();
  }

  /** Values bound so far, by placeholder. */
  get bindings(): ReadonlyMap<string, ScalarItem> {
    return this.#bindings;
  }

  #seconds(): bigint {
    return BigInt(Math.floor(this.#now().getTime() / 1000));
  }

  /** Returns the request with every placeholder replaced; an unbound placeholder raises an error. */
  bindRequest(request: TemplateItem): KmipItem {
    if (isPlaceholder(request))
      return this.#resolve(request.tag, request.type, request.placeholder);
    if (request.type === "Structure") {
      return {
        tag: request.tag,
        type: "Structure",
        value: request.value.map((child) => this.bindRequest(child)),
      };
    }
    return request;
  }

  #resolve(tag: number, type: string, placeholder: string): ScalarItem {
    const offset = parseTimePlaceholder(placeholder);
    if (offset !== undefined && type === "DateTime") {
      return { tag, type, value: this.#seconds() + offset };
    }
    const value = this.#bindings.get(placeholder) ?? this.#latestByTag.get(tag);
    if (value === undefined || value.type !== type) {
      throw new KeywardError(
        "invalid_request",
        `placeholder ${placeholder} in <${tagDisplayName(tag)}> has no value from an earlier response`,
      );
    }
    return { ...value, tag } as ScalarItem;
  }

  /**
   * Compares the server's response with the expected one, binding the
   * placeholders it captures; returns the first mismatch or undefined.
   */
  checkResponse(expected: TemplateItem, actual: KmipItem): ResponseMismatch | undefined {
    const timeWindow = {
      earliest: this.#started - this.#tolerance,
      latest: this.#seconds() + this.#tolerance,
    };
    const mismatch = compareResponse(expected, actual, {
      ...this.#compare,
      bindings: this.#bindings,
      timeWindow,
    });
    this.#recordLatest(actual);
    return mismatch;
  }

  #recordLatest(item: KmipItem): void {
    if (item.type === "Structure") {
      for (const child of item.value) this.#recordLatest(child);
      return;
    }
    this.#latestByTag.set(item.tag, item);
  }
}
