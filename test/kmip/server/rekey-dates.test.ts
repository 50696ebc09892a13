import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import type { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  child,
  dateTime,
  dateTimeOf,
  enumItem,
  enumName,
  integer,
  struct,
  tag,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import type { KmipObject } from "../../../src/kmip/server/object-store.ts";
import { dateAttribute } from "../../../src/kmip/server/objects.ts";
import { replacementDates } from "../../../src/kmip/server/operations/replacement.ts";
import { call, newDispatcher, payloadOf } from "./helpers.ts";

const ENCRYPT = 0x04;

/** Returns an object with the given dates, in seconds. */
function withDates(dates: Record<string, number>): KmipObject {
  return {
    uid: "old",
    objectType: "SymmetricKey",
    attributes: Object.entries(dates).map(([name, seconds]) =>
      dateAttribute(name, BigInt(seconds)),
    ),
  };
}

/** Returns the dates of a list of date attributes, as numbers of seconds by name. */
function datesOf(attributes: ReturnType<typeof replacementDates>): Record<string, number> {
  return Object.fromEntries(
    attributes.map((attribute) => [attribute.name, Number(dateTimeOf(attribute.value))]),
  );
}

const OLD = {
  "Activation Date": 1000,
  "Process Start Date": 1100,
  "Protect Stop Date": 5000,
  "Deactivation Date": 6000,
};

describe("replacement dates", () => {
  it("copies the dates without an Offset", () => {
    assert.deepEqual(datesOf(replacementDates(withDates(OLD), undefined, 3000n)), OLD);
  });

  it("shifts the dates by the Offset", () => {
    assert.deepEqual(datesOf(replacementDates(withDates(OLD), 100n, 3000n)), {
      "Activation Date": 3100,
      "Process Start Date": 3200,
      "Protect Stop Date": 7100,
      "Deactivation Date": 8100,
    });
  });

  it("sets only the Activation Date without an old one", () => {
    const old = withDates({ "Deactivation Date": 6000 });
    assert.deepEqual(datesOf(replacementDates(old, 100n, 3000n)), { "Activation Date": 3100 });
    assert.deepEqual(datesOf(replacementDates(undefined, 0n, 3000n)), { "Activation Date": 3000 });
    assert.deepEqual(replacementDates(undefined, undefined, 3000n), []);
  });

  it("leaves out stop dates that passed", () => {
    const old = withDates({ ...OLD, "Protect Stop Date": 2500, "Deactivation Date": 3000 });
    assert.deepEqual(datesOf(replacementDates(old, undefined, 3000n)), {
      "Activation Date": 1000,
      "Process Start Date": 1100,
    });
  });
});

/** Creates an AES key with the given attributes and returns its Unique Identifier. */
async function createAes(dispatcher: KmipDispatcher, extra: KmipItem[]): Promise<string> {
  const payload = payloadOf(
    await call(dispatcher, "Create", [
      enumItem("ObjectType", "SymmetricKey"),
      struct("Attributes", [
        enumItem("CryptographicAlgorithm", "AES"),
        integer("CryptographicLength", 256),
        integer("CryptographicUsageMask", ENCRYPT),
        ...extra,
      ]),
    ]),
  );
  return textOf(child(payload, "UniqueIdentifier")!);
}

async function attributesOf(dispatcher: KmipDispatcher, uid: string): Promise<StructureItem> {
  return child(
    payloadOf(await call(dispatcher, "GetAttributes", [text("UniqueIdentifier", uid)])),
    "Attributes",
  ) as StructureItem;
}

async function reKey(dispatcher: KmipDispatcher, uid: string, extra: KmipItem[]): Promise<string> {
  const payload = payloadOf(
    await call(dispatcher, "ReKey", [text("UniqueIdentifier", uid), ...extra]),
  );
  return textOf(child(payload, "UniqueIdentifier")!);
}

describe("Re-key dates", () => {
  const now = () => BigInt(Math.floor(Date.now() / 1000));

  it("gives an active key an active replacement", async () => {
    const dispatcher = newDispatcher();
    const deactivation = now() + 86_400n;
    const uid = await createAes(dispatcher, [
      dateTime("ActivationDate", now() - 60n),
      dateTime("DeactivationDate", deactivation),
    ]);
    const replacement = await reKey(dispatcher, uid, []);
    const attributes = await attributesOf(dispatcher, replacement);
    assert.equal(enumName(child(attributes, "State")!), "Active");
    assert.equal(dateTimeOf(child(attributes, "DeactivationDate")!), deactivation);
  });

  it("activates the replacement after the Offset", async () => {
    const dispatcher = newDispatcher();
    const activation = now() - 60n;
    const deactivation = now() + 86_400n;
    const uid = await createAes(dispatcher, [
      dateTime("ActivationDate", activation),
      dateTime("DeactivationDate", deactivation),
    ]);
    const before = now();
    const replacement = await reKey(dispatcher, uid, [
      { tag: tag("Offset"), type: "Interval", value: 3600 },
    ]);
    const attributes = await attributesOf(dispatcher, replacement);
    assert.equal(enumName(child(attributes, "State")!), "PreActive");
    const newActivation = dateTimeOf(child(attributes, "ActivationDate")!);
    assert.ok(newActivation >= before + 3600n);
    assert.ok(newActivation <= now() + 3600n);
    assert.equal(
      dateTimeOf(child(attributes, "DeactivationDate")!),
      deactivation + (newActivation - activation),
    );
  });

  it("gives a revoked key a usable replacement", async () => {
    const dispatcher = newDispatcher();
    const uid = await createAes(dispatcher, [dateTime("ActivationDate", now() - 60n)]);
    payloadOf(
      await call(dispatcher, "Revoke", [
        text("UniqueIdentifier", uid),
        struct("RevocationReason", [enumItem("RevocationReasonCode", "Superseded")]),
      ]),
    );
    const replacement = await reKey(dispatcher, uid, []);
    const attributes = await attributesOf(dispatcher, replacement);
    assert.equal(enumName(child(attributes, "State")!), "Active");
    assert.equal(child(attributes, "DeactivationDate"), undefined);
  });
});
