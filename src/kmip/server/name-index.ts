/**
 * The Name index of KMIP objects: one entry per Name of each object, at
 * `kmip/names/<digest>/<uid>`, so that Locate by Name and the Name
 * uniqueness check read the objects that have a Name instead of every
 * object.
 *
 * The digest is the SHA-256 (hex) of the Name's TTLV encoding (Name Value
 * and Name Type), which keeps client text out of storage keys. An entry's
 * value is that encoding itself, and readers compare it with the Name they
 * look for, so two Names with one digest would still be distinguished. The
 * object store changes an object's entries in the transaction that writes
 * the object (see object-store.ts), and `buildNameIndex` adds the entries
 * of objects stored before the index existed.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import type { StorageReader, StorageWriter } from "../../storage/storage.ts";
import type { KmipItem } from "../item.ts";
import { encodeTtlv } from "../ttlv.ts";
import type { KmipAttribute } from "./attributes.ts";
import { KmipOperationError } from "./errors.ts";

/** Storage prefix of the Name index, followed by `<digest>/<uid>`. */
export const KMIP_NAMES_PREFIX = "kmip/names/";

/**
 * The key whose presence records that every object stored before the
 * index existed has its entries. Its value is `{"format":1}`.
 */
export const KMIP_NAME_INDEX_MARKER = "kmip/name-index";

const INDEX_FORMAT = 1;

/** Objects read per page of the backfill's scan. */
const BACKFILL_PAGE = 200;

/**
 * Entries after which a backfill transaction starts no further object.
 * This keeps it below the barrier's headroom of 1,000 encryptions per
 * transaction unless one object has more than 200 Names.
 */
const BACKFILL_WRITES = 800;

/** The Names of one object: the TTLV encoding of each, by digest. */
export type NameSet = Map<string, Buffer>;

/** Returns the digest of a Name's TTLV encoding, which names its index folder. */
export function nameDigest(encoding: Uint8Array): string {
  return createHash("sha256").update(encoding).digest("hex");
}

/** Returns the TTLV encoding of a Name attribute value and its digest. */
export function encodeName(value: KmipItem): { encoding: Buffer; digest: string } {
  const encoding = encodeTtlv(value);
  return { encoding, digest: nameDigest(encoding) };
}

/** Returns the Names among the attributes, by digest. */
export function namesOf(attributes: readonly KmipAttribute[]): NameSet {
  const names: NameSet = new Map();
  for (const attribute of attributes) {
    if (attribute.name !== "Name") continue;
    const { encoding, digest } = encodeName(attribute.value);
    names.set(digest, encoding);
  }
  return names;
}

/**
 * Returns the Names of an object as stored (the JSON of object-store.ts,
 * whose attribute values are base64 TTLV), without decoding the rest.
 */
export function storedNamesOf(uid: string, value: Uint8Array): NameSet {
  const names: NameSet = new Map();
  let attributes: unknown;
  try {
    attributes = (JSON.parse(Buffer.from(value).toString("utf8")) as { attributes?: unknown })
      .attributes;
  } catch {
    // The parser's message quotes the record's text, which may contain key material.
    throw unreadable(uid);
  }
  if (!Array.isArray(attributes)) throw unreadable(uid);
  for (const attribute of attributes as { name?: unknown; value?: unknown }[]) {
    if (attribute?.name !== "Name") continue;
    if (typeof attribute.value !== "string") throw unreadable(uid);
    const encoding = Buffer.from(attribute.value, "base64");
    names.set(nameDigest(encoding), encoding);
  }
  return names;
}

function unreadable(uid: string): KeywardError {
  return new KeywardError("internal", "internal error", {
    details: { uid, reason: "stored KMIP object cannot be read" },
  });
}

/** Returns the storage key of the index entry of Name `digest` for object `uid`. */
export function nameEntryKey(digest: string, uid: string): string {
  return `${KMIP_NAMES_PREFIX}${digest}/${uid}`;
}

/** Lists the identifiers that have an index entry under `digest`, whatever Name the entry contains. */
export async function listNameEntries(reader: StorageReader, digest: string): Promise<string[]> {
  const names = await reader.list(`${KMIP_NAMES_PREFIX}${digest}/`);
  return names.filter((name) => !name.endsWith("/"));
}

/**
 * Returns the identifiers of the objects whose committed index entry
 * contains the Name `encoding`, and every identifier listed under its
 * digest (for the commit's recheck, see `checkNameClaims`).
 */
export async function readNameEntries(
  reader: StorageReader,
  encoding: Buffer,
  digest: string,
): Promise<{ holders: string[]; listed: string[] }> {
  const listed = await listNameEntries(reader, digest);
  const holders: string[] = [];
  for (const uid of listed) {
    const value = await reader.get(nameEntryKey(digest, uid));
    if (value !== undefined && encoding.equals(value)) holders.push(uid);
  }
  return { holders, listed };
}

/**
 * Writes the index changes of one object write inside its transaction:
 * removes the entries of Names the object lost and adds those of Names it
 * gained. `previous` are the Names of the committed object, read in the
 * same transaction, and `next` those of the object written (empty for a
 * removal).
 */
export async function writeNameChanges(
  tx: StorageWriter,
  uid: string,
  previous: NameSet,
  next: NameSet,
): Promise<void> {
  for (const digest of previous.keys()) {
    if (!next.has(digest)) await tx.delete(nameEntryKey(digest, uid));
  }
  for (const [digest, encoding] of next) {
    if (!previous.has(digest)) await tx.put(nameEntryKey(digest, uid), encoding);
  }
}

/**
 * Checks, inside a commit's transaction, that no other writer changed the
 * index entries of a Name that the commit adds since this node read them.
 * `read` maps each digest that works of the group read to the identifiers
 * listed then. Entries of objects the commit itself writes (`written`) are
 * left out on both sides, because the commit replaces them.
 *
 * This is what keeps two nodes from both giving an object one Name: each
 * checked that the Name was free, and the second commit finds the entry of
 * the first. On PostgreSQL both transactions read the digest's entries and
 * write among them, so serialisable isolation aborts one of two that run at
 * once, and its retry finds the other's entry. Throws Non Unique Name
 * Attribute, which fails every work of the group.
 */
export async function checkNameClaims(
  tx: StorageReader,
  added: Iterable<string>,
  read: ReadonlyMap<string, readonly string[]>,
  written: ReadonlySet<string>,
): Promise<void> {
  const checked = new Set<string>();
  for (const digest of added) {
    const before = read.get(digest);
    if (before === undefined || checked.has(digest)) continue;
    checked.add(digest);
    const now = await listNameEntries(tx, digest);
    if (otherEntries(now, written) !== otherEntries(before, written)) {
      throw new KmipOperationError(
        "NonUniqueNameAttribute",
        "the objects that have a Name this request sets changed while the request ran, so nothing was stored. Retry the request",
      );
    }
  }
}

/** Returns the identifiers not in `written`, sorted and joined, for comparison. */
function otherEntries(uids: readonly string[], written: ReadonlySet<string>): string {
  return uids
    .filter((uid) => !written.has(uid))
    .sort()
    .join("\n");
}

/** Returns true when the marker records that the index contains every object's Names. */
export async function nameIndexBuilt(reader: StorageReader): Promise<boolean> {
  const value = await reader.get(KMIP_NAME_INDEX_MARKER);
  if (value === undefined) return false;
  try {
    const marker = JSON.parse(Buffer.from(value).toString("utf8")) as { format?: unknown };
    return marker.format === INDEX_FORMAT;
  } catch {
    return false;
  }
}

/**
 * Adds the index entries of every object stored under `objectsPrefix`,
 * then stores the marker. Each transaction reads the objects it indexes,
 * so an object that another writer changes at the same time gets the
 * entries of its committed Names. Running it twice, or on two nodes at
 * once, writes the same entries. Returns the number of objects indexed.
 */
export async function buildNameIndex(
  barrier: Barrier,
  objectsPrefix: string,
  logger?: Pick<Logger, "info" | "warn">,
): Promise<number> {
  let after: string | undefined;
  let objects = 0;
  for (;;) {
    const page = await barrier.scan(objectsPrefix, {
      limit: BACKFILL_PAGE,
      ...(after === undefined ? {} : { after }),
    });
    if (page.length === 0) break;
    // A transaction ends early once it reaches BACKFILL_WRITES entries, and the next scan starts after its last object.
    const result = await barrier.transaction(async (tx) => {
      let writes = 0;
      let indexed = 0;
      let last = page[0]!;
      for (const uid of page) {
        if (writes >= BACKFILL_WRITES) break;
        last = uid;
        // Objects whose identifier contains "/" cannot be read (see KmipObjectStore), so they get no entries.
        if (uid.includes("/")) continue;
        const value = await tx.get(objectsPrefix + uid);
        if (value === undefined) continue;
        let names: NameSet;
        try {
          names = storedNamesOf(uid, value);
        } catch (error) {
          // One damaged record must not stop every lookup by Name: it gets no entries.
          logger?.warn({ uid, err: error }, "skipped an unreadable KMIP object in the Name index");
          continue;
        }
        await writeNameChanges(tx, uid, new Map(), names);
        writes += names.size;
        indexed += 1;
      }
      return { last, indexed };
    });
    objects += result.indexed;
    after = result.last;
    if (result.last === page.at(-1) && page.length < BACKFILL_PAGE) break;
  }
  await barrier.put(
    KMIP_NAME_INDEX_MARKER,
    Buffer.from(JSON.stringify({ format: INDEX_FORMAT }), "utf8"),
  );
  logger?.info({ objects }, "built the KMIP Name index of the stored objects");
  return objects;
}
