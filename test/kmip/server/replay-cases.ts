import { readFileSync } from "node:fs";
import type { KmipItem, TemplateItem } from "../../../src/kmip/item.ts";
import { parseKmipCase, ReplaySession } from "../../../src/kmip/replay.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { tagNumber } from "../../../src/kmip/tags.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import type { CaseFile } from "../vectors.ts";

const SERVER_CORRELATION_VALUE = tagNumber("ServerCorrelationValue");

/**
 * Removes Server Correlation Value items: the server chooses whether to send
 * one, and the cases include it in some responses and not in others.
 */
function withoutServerCorrelation<T extends TemplateItem>(item: T): T {
  if (!("value" in item) || item.type !== "Structure") return item;
  return {
    ...item,
    value: item.value
      .filter((child) => child.tag !== SERVER_CORRELATION_VALUE)
      .map((child) => withoutServerCorrelation(child)),
  };
}

const RESULT_MESSAGE = tagNumber("ResultMessage");

/** Collects the Result Message texts of a response, to explain a failed step. */
function resultMessages(item: KmipItem): string[] {
  if (item.type === "Structure") return item.value.flatMap(resultMessages);
  return item.tag === RESULT_MESSAGE && item.type === "TextString" ? [item.value] : [];
}

export interface CaseResult {
  name: string;
  /** The first failing step and why, or undefined when every step matched. */
  failure?: string;
}

/**
 * Case series whose later cases use the objects the earlier ones leave on
 * the server (a tape library writes a key in TL-M-2 and reads it back in
 * TL-M-3). Their cases share one server, in file order.
 */
const SERIES = [/^SASED-M-\d+-/, /^TL-M-\d+-/];

const seriesDispatchers = new Map<string, KmipDispatcher>();

function newDispatcher(): KmipDispatcher {
  return new KmipDispatcher({ store: new KmipObjectStore(new MemoryBarrier()) });
}

/** Returns the dispatcher for a case: shared within its series and version, fresh otherwise. */
function dispatcherFor(file: CaseFile): KmipDispatcher {
  const series = SERIES.find((pattern) => pattern.test(file.name));
  if (series === undefined) return newDispatcher();
  const key = `${file.version} ${series.source}`;
  let dispatcher = seriesDispatchers.get(key);
  if (dispatcher === undefined) {
    dispatcher = newDispatcher();
    seriesDispatchers.set(key, dispatcher);
  }
  return dispatcher;
}

/**
 * Replays one case through TTLV, against a fresh dispatcher and store or
 * the one its series shares. Cases of a series must run in file order.
 */
export async function replayCase(file: CaseFile): Promise<CaseResult> {
  const name = file.name.replace(/\.xml$/, "");
  const parsed = parseKmipCase(name, readFileSync(file.path, "utf8"));
  const dispatcher = dispatcherFor(file);
  const session = new ReplaySession();
  for (const step of parsed.steps) {
    let request: KmipItem;
    try {
      request = session.bindRequest(step.request);
    } catch (error) {
      return { name, failure: `step ${step.index}: ${(error as Error).message}` };
    }
    const responseBytes = await dispatcher.handleTtlv(encodeTtlv(request), {
      identity: "conformance",
    });
    const actual = withoutServerCorrelation(decodeTtlv(responseBytes));
    const mismatch = session.checkResponse(withoutServerCorrelation(step.expected), actual);
    if (mismatch !== undefined) {
      const message = resultMessages(actual);
      const detail = message.length > 0 ? ` (server: ${message.join("; ")})` : "";
      return { name, failure: `step ${step.index}: ${mismatch.path}: ${mismatch.reason}${detail}` };
    }
  }
  return { name };
}
