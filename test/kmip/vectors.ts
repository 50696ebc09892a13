import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isPlaceholder, type KmipItem, type TemplateItem } from "../../src/kmip/item.ts";
import { parseTimePlaceholder } from "../../src/kmip/replay-compare.ts";
import { decodeXmlTemplates } from "../../src/kmip/xml.ts";

/**
 * Loader for the OASIS KMIP conformance cases, which live in the shared
 * folder beside the repository root (`<root>/../shared/vectors/kmip/`), where
 * CI places them too.
 */
const VECTORS_DIR = new URL("../../../shared/vectors/kmip/", import.meta.url);

/** The mandatory case sets: KMIP Profiles 1.4 and 2.1. */
export const CASE_VERSIONS = ["v1.4", "v2.1"] as const;

export interface CaseFile {
  version: (typeof CASE_VERSIONS)[number];
  name: string;
  path: string;
}

export function caseFiles(): CaseFile[] {
  return CASE_VERSIONS.flatMap((version) => {
    const dir = new URL(`${version}/`, VECTORS_DIR);
    return readdirSync(dir)
      .filter((name) => name.endsWith(".xml"))
      .sort()
      .map((name) => ({ version, name, path: fileURLToPath(new URL(name, dir)) }));
  });
}

/** A fixed "now" for placeholder values, in seconds since the epoch. */
export const FIXED_NOW = 1_700_000_000n;

/**
 * Replaces placeholders with fixed stand-ins of their type: the placeholder
 * text for strings and bytes, FIXED_NOW plus the offset for times.
 */
export function bindFixed(item: TemplateItem): KmipItem {
  if (isPlaceholder(item)) {
    const { tag, type, placeholder } = item;
    switch (type) {
      case "TextString":
        return { tag, type, value: placeholder };
      case "ByteString":
        return { tag, type, value: Buffer.from(placeholder) };
      case "DateTime":
        return { tag, type, value: FIXED_NOW + (parseTimePlaceholder(placeholder) ?? 0n) };
      default:
        throw new Error(`no stand-in for a ${type} placeholder (${placeholder})`);
    }
  }
  if (item.type === "Structure") {
    return { tag: item.tag, type: "Structure", value: item.value.map(bindFixed) };
  }
  return item;
}

/** Parses every message of a case file and binds its placeholders with bindFixed. */
export function bindAll(xml: string): KmipItem[] {
  return decodeXmlTemplates(xml).map(bindFixed);
}

/** A seeded pseudo-random generator (mulberry32), so a failing mutation can be reproduced. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}
