import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { itemsEqual } from "../../src/kmip/item.ts";
import { decodeJson, encodeJson } from "../../src/kmip/json.ts";
import { decodeTtlv, encodeTtlv } from "../../src/kmip/ttlv.ts";
import { decodeXml, decodeXmlTemplates, encodeXml } from "../../src/kmip/xml.ts";
import { bindFixed, CASE_VERSIONS, caseFiles } from "./vectors.ts";

/** Enumeration values in the cases that are vendor extensions, so they have no name. */
const EXTENSION_ENUMERATIONS = new Set(["0x80000001", "0x80123456"]);

describe("KMIP conformance case messages", () => {
  for (const version of CASE_VERSIONS) {
    it(`round trips every ${version} message`, (t) => {
      const files = caseFiles().filter((file) => file.version === version);
      const failures: string[] = [];
      let messages = 0;
      for (const file of files) {
        const templates = decodeXmlTemplates(readFileSync(file.path, "utf8"));
        for (const [index, template] of templates.entries()) {
          messages++;
          const where = `${file.name} message ${index}`;
          const rendered = encodeXml(template);
          if (!itemsEqual(decodeXmlTemplates(rendered)[0]!, template))
            failures.push(`${where}: XML template`);
          if (rendered.includes("<TTLV ")) failures.push(`${where}: a tag has no registry name`);
          for (const match of rendered.matchAll(/type="Enumeration" value="(0x[0-9A-F]+)"/g)) {
            if (!EXTENSION_ENUMERATIONS.has(match[1]!))
              failures.push(`${where}: enumeration ${match[1]} has no name`);
          }

          const item = bindFixed(template);
          const fromTtlv = decodeTtlv(encodeTtlv(item));
          if (!itemsEqual(fromTtlv, item)) failures.push(`${where}: TTLV`);
          if (!itemsEqual(decodeXml(encodeXml(fromTtlv)), item))
            failures.push(`${where}: TTLV then XML`);
          if (!itemsEqual(decodeJson(encodeJson(fromTtlv)), item))
            failures.push(`${where}: TTLV then JSON`);
        }
      }
      t.diagnostic(`${version}: ${files.length} case files, ${messages} messages`);
      assert.ok(files.length > 0, `no case files for ${version}`);
      assert.deepEqual(failures, []);
    });
  }
});
