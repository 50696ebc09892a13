/**
 * Locate: the identifiers of the objects whose attributes match every
 * attribute of the request. A Name matches exactly (value and type), and
 * a request with a Name reads only the objects the Name index lists. A date
 * attribute given twice is a range, both ends included. Maximum Items and
 * Offset Items page through the matches, newest first. With policies, the
 * matches are only the objects the client may read with Get Attributes.
 */
import type { KmipItem, StructureItem } from "../../item.ts";
import { itemsEqual } from "../../item.ts";
import { type KmipAttribute, parseAttributeContainer } from "../attributes.ts";
import { atLeast, type OperationContext } from "../context.ts";
import { integer, tag } from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import { stateOf } from "../objects.ts";
import { uidItem } from "./common.ts";
import { optionalCount } from "./lifecycle.ts";

/** The on-line storage bit of the Storage Status Mask. */
const ONLINE_STORAGE = 1;

interface Criterion {
  name: string;
  values: KmipItem[];
}

function criteria(payload: StructureItem): Criterion[] {
  const attributes: KmipAttribute[] = [];
  for (const item of payload.value) {
    if (item.tag === tag("Attribute"))
      attributes.push(...parseAttributeContainer({ ...payload, value: [item] }));
    if (item.tag === tag("Attributes")) attributes.push(...parseAttributeContainer(item));
  }
  const byName = new Map<string, KmipItem[]>();
  for (const attribute of attributes) {
    byName.set(attribute.name, [...(byName.get(attribute.name) ?? []), attribute.value]);
  }
  return [...byName].map(([name, values]) => ({ name, values }));
}

function matches(object: KmipObject, criterion: Criterion): boolean {
  const instances = object.attributes.filter((attribute) => attribute.name === criterion.name);
  const [first, second] = criterion.values;
  if (criterion.values.length === 2 && first?.type === "DateTime" && second?.type === "DateTime") {
    const [low, high] =
      first.value < second.value ? [first.value, second.value] : [second.value, first.value];
    return instances.some(
      (instance) =>
        instance.value.type === "DateTime" &&
        instance.value.value >= low &&
        instance.value.value <= high,
    );
  }
  return criterion.values.every((value) =>
    instances.some((instance) => itemsEqual(instance.value, value)),
  );
}

export async function locate(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipItem[]> {
  const wanted = criteria(payload);
  const maximum = optionalCount(payload, "MaximumItems");
  const offset = optionalCount(payload, "OffsetItems") ?? 0;
  // Keyward keeps every object on-line and none in archival storage, so a
  // Storage Status Mask without the on-line bit matches nothing. Without
  // a mask, KMIP locates on-line objects.
  const storageMask = optionalCount(payload, "StorageStatusMask");
  if (storageMask !== undefined && (storageMask & ONLINE_STORAGE) === 0) {
    return offset > 0 && atLeast(context.version, 1, 3) ? [integer("LocatedItems", 0)] : [];
  }
  const found: string[] = [];
  const seen = new Set<string>();
  // With a Name, the Name index lists the only objects that can match.
  // Without one, every object is read.
  const name = wanted.find((criterion) => criterion.name === "Name")?.values[0];
  const candidates = () => (name === undefined ? context.store.list() : context.store.named(name));
  let pending = await candidates();
  while (pending.length > 0) {
    for (const uid of pending) {
      seen.add(uid);
      // Only the objects the client may read count, also for Maximum Items and Offset Items.
      if (context.permits?.("GetAttributes", uid) === false) continue;
      const object = await context.store.find(uid);
      if (object === undefined) continue;
      // NOTE: destroyed objects are never located; the 2.x Storage Status Mask bit for them is not read.
      const state = stateOf(object);
      if (state === "Destroyed" || state === "DestroyedCompromised") continue;
      if (!wanted.every((criterion) => matches(object, criterion))) continue;
      found.push(uid);
    }
    // Reading a managed key's object can make the objects of versions that
    // transit added (see transit-versions.ts). They take over the object's
    // Name, so the next lookup lists them as new candidates.
    pending = (await candidates()).filter((uid) => !seen.has(uid));
  }
  // Identifiers sort in creation order (see KmipObjectStore.newUid), so this puts the newest first.
  found.sort();
  found.reverse();
  const page = found.slice(offset, maximum === undefined ? undefined : offset + maximum);
  const items: KmipItem[] = [];
  // Located Items (1.3 and later) gives a client paging with Offset Items the number of matches.
  if (offset > 0 && atLeast(context.version, 1, 3))
    items.push(integer("LocatedItems", found.length));
  if (page[0] !== undefined) context.idPlaceholder = page[0];
  items.push(...page.map((uid) => uidItem(uid)));
  return items;
}
