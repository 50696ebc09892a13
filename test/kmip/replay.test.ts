import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import {
  isPlaceholder,
  type KmipItem,
  type StructureItem,
  type TemplateItem,
} from "../../src/kmip/item.ts";
import { type KmipCase, parseKmipCase, ReplaySession } from "../../src/kmip/replay.ts";
import { compareResponse } from "../../src/kmip/replay-compare.ts";
import { enumerationValue, tagNumber } from "../../src/kmip/tags.ts";
import { caseFiles, FIXED_NOW } from "./vectors.ts";

const fixedClock = () => new Date(Number(FIXED_NOW) * 1000);

function loadCase(name: string): KmipCase {
  const file = caseFiles().find((candidate) => candidate.name === name);
  assert.ok(file, `case file ${name} not found`);
  return parseKmipCase(file.name, readFileSync(file.path, "utf8"));
}

/**
 * Plays a server that returns the expected response, choosing its own
 * value for each placeholder: identifiers stay stable, other values differ
 * per step, and times are the fixed clock plus the offset.
 */
function serverAnswer(expected: TemplateItem, step: number): KmipItem {
  if (isPlaceholder(expected)) {
    const { tag, type, placeholder } = expected;
    if (type === "DateTime") {
      const offset = /^\$NOW([+-]\d+)?$/.exec(placeholder)?.[1];
      return { tag, type, value: FIXED_NOW + BigInt(offset ?? 0) };
    }
    const identifier = placeholder.includes("UNIQUE_IDENTIFIER");
    const text = identifier
      ? `server-${placeholder.slice(1).toLowerCase()}`
      : `${placeholder}@${step}`;
    if (type === "TextString") return { tag, type, value: text };
    if (type === "ByteString") return { tag, type, value: Buffer.from(text) };
    throw new Error(`no server value for a ${type} placeholder`);
  }
  if (expected.type === "Structure") {
    return {
      tag: expected.tag,
      type: "Structure",
      value: expected.value.map((child) => serverAnswer(child, step)),
    };
  }
  return expected;
}

/** Returns a copy of the item with the first item of `tag` replaced by `replace(item)`. */
function replaceFirst(
  item: KmipItem,
  tag: number,
  replace: (found: KmipItem) => KmipItem,
): KmipItem {
  let done = false;
  const visit = (current: KmipItem): KmipItem => {
    if (done) return current;
    if (current.tag === tag) {
      done = true;
      return replace(current);
    }
    if (current.type !== "Structure") return current;
    return { ...current, value: current.value.map(visit) };
  };
  return visit(item);
}

function collectText(item: KmipItem, tag: number, into: string[] = []): string[] {
  if (item.type === "Structure") {
    for (const child of item.value) collectText(child, tag, into);
  } else if (item.tag === tag && item.type === "TextString") {
    into.push(item.value);
  }
  return into;
}

describe("parseKmipCase", () => {
  it("pairs every case's messages", () => {
    for (const file of caseFiles()) {
      const kmipCase = parseKmipCase(file.name, readFileSync(file.path, "utf8"));
      assert.ok(kmipCase.steps.length > 0, `${file.name} has no steps`);
    }
  });

  it("fail request without response", () => {
    const xml = "<KMIP><RequestMessage/></KMIP>";
    assert.throws(() => parseKmipCase("broken", xml), { code: "invalid_request" });
  });
});

describe("ReplaySession", () => {
  it("replays every case against an echoing server", () => {
    const failures: string[] = [];
    for (const file of caseFiles()) {
      const kmipCase = parseKmipCase(file.name, readFileSync(file.path, "utf8"));
      const session = new ReplaySession({ now: fixedClock });
      for (const step of kmipCase.steps) {
        try {
          session.bindRequest(step.request);
        } catch (error) {
          failures.push(`${file.name} step ${step.index}: ${(error as Error).message}`);
          break;
        }
        const mismatch = session.checkResponse(
          step.expected,
          serverAnswer(step.expected, step.index),
        );
        if (mismatch !== undefined)
          failures.push(`${file.name} step ${step.index}: ${mismatch.path} ${mismatch.reason}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("sends captured identifiers and times", () => {
    const kmipCase = loadCase("SKLC-M-1-14.xml");
    const session = new ReplaySession({ now: fixedClock });
    const [create, getAttributes] = kmipCase.steps;
    assert.equal(
      session.checkResponse(create!.expected, serverAnswer(create!.expected, 0)),
      undefined,
    );
    const request = session.bindRequest(getAttributes!.request);
    assert.deepEqual(collectText(request, tagNumber("UniqueIdentifier")), [
      "server-unique_identifier_0",
    ]);
    assert.equal(session.bindings.get("$UNIQUE_IDENTIFIER_0")?.value, "server-unique_identifier_0");
  });

  it("fail request with unbound placeholder", () => {
    const kmipCase = loadCase("SKLC-M-1-14.xml");
    const session = new ReplaySession({ now: fixedClock });
    assert.throws(() => session.bindRequest(kmipCase.steps[1]!.request), {
      code: "invalid_request",
    });
  });

  it("fail identifier that changes", () => {
    const kmipCase = loadCase("SKLC-M-1-14.xml");
    const session = new ReplaySession({ now: fixedClock });
    const [create, getAttributes] = kmipCase.steps;
    session.checkResponse(create!.expected, serverAnswer(create!.expected, 0));
    const actual = replaceFirst(
      serverAnswer(getAttributes!.expected, 1),
      tagNumber("UniqueIdentifier"),
      (item) => ({
        ...item,
        type: "TextString",
        value: "another-object",
      }),
    );
    const mismatch = session.checkResponse(getAttributes!.expected, actual);
    assert.equal(mismatch?.path, "ResponseMessage/BatchItem/ResponsePayload/UniqueIdentifier");
  });

  it("fail time outside the window", () => {
    const kmipCase = loadCase("SKLC-M-1-14.xml");
    const session = new ReplaySession({ now: fixedClock, clockToleranceSeconds: 5 });
    const create = kmipCase.steps[0]!;
    const actual = replaceFirst(
      serverAnswer(create.expected, 0),
      tagNumber("TimeStamp"),
      (item) => ({
        ...item,
        type: "DateTime",
        value: FIXED_NOW - 3600n,
      }),
    );
    assert.equal(
      session.checkResponse(create.expected, actual)?.path,
      "ResponseMessage/ResponseHeader/TimeStamp",
    );
  });
});

describe("compareResponse", () => {
  const kmipCase = loadCase("SKLC-M-1-14.xml");
  const getAttributes = kmipCase.steps[1]!;
  const answer = serverAnswer(getAttributes.expected, 1);

  it("accepts identical response", () => {
    assert.equal(compareResponse(answer, answer), undefined);
  });

  it("accepts echoed vector responses", () => {
    for (const step of loadCase("CS-BC-M-1-21.xml").steps) {
      assert.equal(
        compareResponse(step.expected, serverAnswer(step.expected, step.index)),
        undefined,
      );
    }
  });

  it("fail changed ResultStatus", () => {
    const failed = replaceFirst(answer, tagNumber("ResultStatus"), (item) => ({
      ...item,
      type: "Enumeration",
      value: enumerationValue("ResultStatus", "OperationFailed"),
    }));
    const mismatch = compareResponse(getAttributes.expected, failed);
    assert.equal(mismatch?.path, "ResponseMessage/BatchItem/ResultStatus");
    assert.match(mismatch?.reason ?? "", /expected Success, got OperationFailed/);
  });

  it("accepts reordered attributes", () => {
    const reordered = replaceFirst(answer, tagNumber("ResponsePayload"), (payload) => {
      const children = [...(payload as StructureItem).value];
      const [identifier, ...attributes] = children;
      return { ...payload, type: "Structure", value: [identifier!, ...attributes.reverse()] };
    });
    assert.equal(compareResponse(getAttributes.expected, reordered), undefined);
  });

  it("fail changed attribute value", () => {
    const changed = replaceFirst(answer, tagNumber("AttributeValue"), (item) => ({
      ...item,
      type: "Enumeration",
      value: enumerationValue("State", "Active"),
    }));
    const mismatch = compareResponse(getAttributes.expected, changed);
    assert.match(
      mismatch?.path ?? "",
      /^ResponseMessage\/BatchItem\/ResponsePayload\/Attribute\[0\]/,
    );
  });

  it("accepts server-chosen values", () => {
    const timeStamp = replaceFirst(answer, tagNumber("DigestValue"), (item) => ({
      ...item,
      type: "ByteString",
      value: Buffer.from("another digest"),
    }));
    assert.equal(compareResponse(getAttributes.expected, timeStamp), undefined);
  });

  it("fail missing and extra items", () => {
    const payloadTag = tagNumber("ResponsePayload");
    const withExtra = replaceFirst(answer, payloadTag, (payload) => ({
      ...payload,
      type: "Structure",
      value: [
        ...(payload as StructureItem).value,
        { tag: tagNumber("Sensitive"), type: "Boolean", value: true },
      ],
    }));
    assert.equal(compareResponse(getAttributes.expected, withExtra)?.reason, "unexpected item");
    const withoutFirst = replaceFirst(answer, payloadTag, (payload) => ({
      ...payload,
      type: "Structure",
      value: (payload as StructureItem).value.slice(0, 1),
    }));
    assert.match(compareResponse(getAttributes.expected, withoutFirst)?.reason ?? "", /expected/);
  });
});
