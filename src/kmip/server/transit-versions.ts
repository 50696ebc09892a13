/**
 * KMIP objects for the versions that transit adds to a managed key.
 *
 * A transit rotation (`keys/:name/rotate`, or automatic rotation) adds a
 * version to the managed key of a KMIP object. KMIP shows each version as
 * its own object, as if Re-key had made it: a new Unique Identifier, the
 * replaced object's attributes (see operations/replacement.ts), and the
 * Replacement Object and Replaced Object Links. A key pair gets a new
 * private key and a new public key, linked to each other and to the ones
 * they replace. The newest object shares the managed key's state, and the
 * objects it replaced keep their own State from then on, as after Re-key.
 *
 * The objects are made by whichever KMIP node reads the key next, so they
 * appear even when the node that rotated runs no KMIP listener or died
 * right after the rotation. Each object's identifier is derived from the
 * mount, key name, version and object type, so two requests or two nodes
 * that make the objects of one version at once write the same object
 * instead of two.
 */
import { createHash } from "node:crypto";
import { effectiveState } from "../../keys/index.ts";
import type { KeyVersion, ManagedKey } from "../../keys/types.ts";
import {
  contentWithMaterial,
  type KmipManagedKeys,
  kmipStateOf,
  linkedUid,
} from "./managed-keys.ts";
import type { KmipObject } from "./object-store.ts";
import { dateAttribute, enumAttribute, replaceAttribute } from "./objects.ts";
import {
  linkAttribute,
  replacementAttributes,
  withReplacementLink,
} from "./operations/replacement.ts";

/** The object-store access of one reconcile, inside one exclusive work. */
export interface VersionObjectsAccess {
  /** Reads a record as stored: without material, and with the State its record contains. */
  findStored(uid: string): Promise<KmipObject | undefined>;
  /** Stages a write of an object through the object store's normal write path. */
  put(object: KmipObject): Promise<void>;
}

/** The outcome of `addVersionObjects`. */
export interface VersionObjectsResult {
  /** False when no object has the managed key's name: the key's first object is missing. */
  found: boolean;
  /** The identifiers of the objects made, in version order. */
  added: string[];
}

/** Maximum number of objects the walk along a replacement chain visits, so a damaged record cannot make it loop. */
const MAX_CHAIN_LENGTH = 100_000;

/**
 * Returns the Unique Identifier of the object of version `version` of key
 * `name` of `mount`: a UUID version 8 (RFC 9562). Its leading 48 bits are
 * the version's creation time in milliseconds, so it sorts after the
 * objects made before it, as `KmipObjectStore.newUid` identifiers do. The
 * other bits come from SHA-256 of the mount, name, version and object type.
 */
export function versionObjectUid(
  mount: string,
  name: string,
  version: number,
  objectType: string,
  createdAtMs: number,
): string {
  const digest = createHash("sha256")
    .update(`${mount}\0${name}\0${version}\0${objectType}`)
    .digest();
  const bytes = digest.subarray(0, 16);
  bytes.writeUIntBE(Math.max(0, Math.min(createdAtMs, 2 ** 48 - 1)), 0, 6);
  bytes[6] = 0x80 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** True when the object belongs to managed key `name` of `mount`. */
function refersTo(object: KmipObject | undefined, mount: string, name: string): boolean {
  return object?.managedKey?.mount === mount && object.managedKey.name === name;
}

/**
 * Returns the newest object of the key's replacement chain: the key's
 * first object (named like the key), then each Replacement Object Link.
 */
async function chainTail(
  access: VersionObjectsAccess,
  head: KmipObject,
  mount: string,
  name: string,
): Promise<KmipObject> {
  let tail = head;
  const seen = new Set([head.uid]);
  for (;;) {
    const next = linkedUid(tail, "ReplacementObjectLink");
    if (next === undefined || seen.has(next) || seen.size >= MAX_CHAIN_LENGTH) return tail;
    const object = await access.findStored(next);
    if (object === undefined || !refersTo(object, mount, name)) return tail;
    seen.add(next);
    tail = object;
  }
}

/** The newest private key and public key of a pair, or the newest symmetric key. */
interface ChainEnd {
  key: KmipObject;
  publicKey?: KmipObject;
}

/** One version's new objects, before their Links to the next version. */
interface VersionObjects {
  key: KmipObject;
  publicKey?: KmipObject;
  /**
   * False for objects that existed already (made by another node), which
   * are written again only to add a missing Replacement Object Link.
   */
  write: boolean;
  /** True for objects that existed before this reconcile. */
  existed: boolean;
}

/** Returns the seconds since the epoch of an ISO 8601 time, as KMIP's Date-Time. */
function secondsOf(iso: string): bigint {
  return BigInt(Math.floor(Date.parse(iso) / 1000));
}

/**
 * Builds the object of a version that replaces `replaced`: its attributes
 * as Re-key sets them, dated at the version's creation, the State of the
 * managed key, and the version's material when the record's Key Format
 * Type can show it.
 */
function versionObject(
  replaced: KmipObject,
  uid: string,
  version: KeyVersion,
  state: string,
  ownState: boolean,
): KmipObject {
  const ref = replaced.managedKey!;
  const content =
    contentWithMaterial(replaced.objectType, replaced.content, version) ?? replaced.content;
  const attributes = replacementAttributes(
    replaced,
    uid,
    content,
    [],
    secondsOf(version.createdAt),
  );
  const object: KmipObject = {
    uid,
    objectType: replaced.objectType,
    attributes,
    ...(content === undefined ? {} : { content }),
    managedKey: {
      mount: ref.mount,
      name: ref.name,
      version: version.version,
      createdAt: version.createdAt,
      ...(ownState ? { ownState: true } : {}),
    },
  };
  const stated = replaceAttribute(object, "State", enumAttribute("State", state));
  // An object that starts Active became so when transit added its version.
  if (state !== "Active") return stated;
  return replaceAttribute(
    stated,
    "Activation Date",
    dateAttribute("Activation Date", secondsOf(version.createdAt)),
  );
}

/** Returns the object with another Link of the type to `uid` added after its attributes. */
function withLink(object: KmipObject, linkType: string, uid: string): KmipObject {
  return { ...object, attributes: [...object.attributes, linkAttribute(linkType, uid)] };
}

/**
 * Makes the KMIP objects of the versions of managed key `name` (of transit
 * mount `mount`) that are newer than every object of the key, and links
 * them into the key's replacement chain. The caller runs it inside one
 * object-store work, so its writes commit together; running it again when
 * nothing changed writes nothing.
 */
export async function addVersionObjects(
  access: VersionObjectsAccess,
  managed: KmipManagedKeys,
  mount: string,
  name: string,
): Promise<VersionObjectsResult> {
  const head = await access.findStored(name);
  if (head === undefined || !refersTo(head, mount, name)) return { found: false, added: [] };
  const tail = await chainTail(access, head, mount, name);
  const tailRef = tail.managedKey!;
  // A trimmed tail version still leads on to the versions added after it.
  const key = await managed.lineageKeyOf(tailRef);
  const now = managed.now();
  // A destroyed managed key has no material left to show in new objects.
  if (key === undefined || effectiveState(key, now) === "destroyed") {
    return { found: true, added: [] };
  }
  const versions = Object.values(key.versions)
    .filter((version) => version.version > tailRef.version)
    .sort((a, b) => a.version - b.version);
  if (versions.length === 0) return { found: true, added: [] };

  const end: ChainEnd = { key: tail };
  if (tail.objectType === "PrivateKey") {
    const publicUid = linkedUid(tail, "PublicKeyLink");
    const publicKey = publicUid === undefined ? undefined : await access.findStored(publicUid);
    if (publicKey?.managedKey?.version === tailRef.version && refersTo(publicKey, mount, name)) {
      end.publicKey = publicKey;
    }
  }
  const chain = await buildChain(access, mount, end, key, versions, now);

  // The new objects are staged before the objects they replace, so a
  // write that fails midway leaves no Replacement Object Link to a
  // missing object.
  const added: string[] = [];
  for (const objects of chain) {
    if (!objects.write) continue;
    await access.put(objects.key);
    if (objects.publicKey !== undefined) await access.put(objects.publicKey);
    if (objects.existed) continue;
    added.push(objects.key.uid);
    if (objects.publicKey !== undefined) added.push(objects.publicKey.uid);
  }
  const first = chain[0]!;
  // The replaced object keeps the State it shows now, as after Re-key.
  const replaced = replaceAttribute(tail, "State", enumAttribute("State", kmipStateOf(key, now)));
  await access.put(withReplacementLink(replaced, first.key.uid));
  if (end.publicKey !== undefined && first.publicKey !== undefined) {
    await access.put(withReplacementLink(end.publicKey, first.publicKey.uid));
  }
  return { found: true, added };
}

/**
 * Builds one object (or one key pair) per version, each replacing the one
 * before it. Every object but the newest keeps its own State, because a
 * newer object shows the managed key's.
 */
async function buildChain(
  access: VersionObjectsAccess,
  mount: string,
  end: ChainEnd,
  key: ManagedKey,
  versions: readonly KeyVersion[],
  now: Date,
): Promise<VersionObjects[]> {
  const state = kmipStateOf(key, now);
  const chain: VersionObjects[] = [];
  let previous: ChainEnd = end;
  for (const [index, version] of versions.entries()) {
    const newest = index === versions.length - 1;
    const createdAtMs = Date.parse(version.createdAt);
    const uid = versionObjectUid(
      mount,
      key.name,
      version.version,
      previous.key.objectType,
      createdAtMs,
    );
    const existing = await access.findStored(uid);
    if (existing !== undefined) {
      // Another node made this version's objects but not the link to
      // them, so this one links to them and goes on from there.
      const publicUid = linkedUid(existing, "PublicKeyLink");
      const publicKey = publicUid === undefined ? undefined : await access.findStored(publicUid);
      const objects: VersionObjects = {
        key: existing,
        ...(publicKey === undefined ? {} : { publicKey }),
        write: false,
        existed: true,
      };
      chain.push(objects);
      previous = objects;
      continue;
    }
    let object = versionObject(previous.key, uid, version, state, !newest);
    let publicKey: KmipObject | undefined;
    if (previous.publicKey !== undefined) {
      const publicUid = versionObjectUid(
        mount,
        key.name,
        version.version,
        "PublicKey",
        createdAtMs,
      );
      // A public key keeps its own State; the new one starts in the private key's.
      publicKey = withLink(
        versionObject(previous.publicKey, publicUid, version, state, false),
        "PrivateKeyLink",
        uid,
      );
      object = withLink(object, "PublicKeyLink", publicUid);
    }
    const objects: VersionObjects = {
      key: object,
      ...(publicKey === undefined ? {} : { publicKey }),
      write: true,
      existed: false,
    };
    chain.push(objects);
    previous = objects;
  }
  // Each object but the newest links to the one that replaces it.
  for (let index = 0; index < chain.length - 1; index++) {
    const current = chain[index]!;
    const next = chain[index + 1]!;
    if (linkedUid(current.key, "ReplacementObjectLink") !== undefined) continue;
    if (!current.write) {
      // An object that showed the managed key's State keeps the one it shows now.
      current.key = replaceAttribute(current.key, "State", enumAttribute("State", state));
      current.write = true;
    }
    current.key = withReplacementLink(current.key, next.key.uid);
    if (current.publicKey !== undefined && next.publicKey !== undefined) {
      current.publicKey = withReplacementLink(current.publicKey, next.publicKey.uid);
    }
  }
  return chain;
}
