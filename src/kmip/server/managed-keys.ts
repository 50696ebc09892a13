/**
 * KMIP objects as Keyward managed keys. The AES keys and RSA and EC key
 * pairs that KMIP Create, Create Key Pair, Register and Re-key make are
 * stored as keys of a transit mount, named by their Unique Identifier, so
 * the transit API lists and uses them. The KMIP record keeps the
 * attributes and a reference to the managed key and version
 * (`KmipManagedKeyRef`) instead of the key material, so the material
 * exists once.
 *
 * The bridge works below the operations: `KmipObjectStore` passes each
 * object it reads through `view`, which puts the key material and the
 * State back, and each object it writes through `record`, which moves
 * State changes to the managed key and strips the material.
 *
 * State has one source of truth. For a private or symmetric key it is the
 * managed key's state (see `kmipStateOf`), unless a Re-key replaced the
 * object: the managed key's state then belongs to the replacement, and the
 * replaced object keeps its own State in its record. A public key keeps
 * its own State too, because KMIP revokes and destroys it apart from its
 * private key.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import type { KeyStore } from "../../engines/transit/store.ts";
import { isKeywardError } from "../../errors.ts";
import { createKey, effectiveState, rotateKey, transitionState } from "../../keys/index.ts";
import type { VersionMaterial } from "../../keys/key-types/index.ts";
import type { KeyState, KeyType, KeyVersion, ManagedKey } from "../../keys/types.ts";
import type { KmipItem, StructureItem } from "../item.ts";
import { KmipOperationError, wrongState } from "./errors.ts";
import { bytes, child, enumItem, optionalEnum, struct, tag, textOf } from "./items.ts";
import { keyBlockOf, keyMaterialOf, privateKeyOf, publicKeyOf, secretBytes } from "./material.ts";
import type { KmipManagedKeyRef, KmipObject } from "./object-store.ts";
import {
  attributeScalar,
  dateAttribute,
  enumAttribute,
  findAttribute,
  replaceAttribute,
  stateOf,
} from "./objects.ts";

/** The holder name transit records for the keys KMIP objects refer to (see `KeyStore.referenceOf`). */
export const KMIP_KEY_HOLDER = "kmip";

/** The transit mounts KMIP objects keep their keys in. */
export interface KmipKeyMounts {
  /** The mount path new objects' keys go to. */
  readonly mount: string;
  /**
   * Returns the key store of transit mount `path`. Throws a KMIP error
   * (General Failure) when the mount is missing or not a transit mount.
   */
  keyStore(path: string): Promise<KeyStore>;
}

/** A record of managed-key changes that `KmipManagedKeys.revert` can undo. */
export type KmipManagedKeyScope = object;

/** A managed key as the scope's first write found it, and as its last write left it. */
interface RecordedKey {
  mount: string;
  /** The value the first write replaced; undefined for a key that did not exist. */
  before: ManagedKey | undefined;
  /** The value the last write stored. */
  after: ManagedKey;
  /**
   * True when a write found the key changed since the scope's previous
   * write (a transit rotation between two operations of one batch), so
   * putting `before` back would erase that change.
   */
  interleaved: boolean;
}

/** Reads an object by identifier, seeing the writes staged by the running work. */
type FindObject = (uid: string) => Promise<KmipObject | undefined>;

const DESTROYED_STATES = new Set(["Destroyed", "DestroyedCompromised"]);

/** Returns the KMIP State that a managed key's state shows as. */
export function kmipStateOf(key: ManagedKey, now: Date): string {
  const state = effectiveState(key, now);
  switch (state) {
    case "pre-active":
      return "PreActive";
    case "active":
      return "Active";
    // KMIP has no suspended state. Pre-Active also allows no use, and
    // Activate, Revoke and Destroy move it where transit moves a
    // suspended key.
    case "suspended":
      return "PreActive";
    case "deactivated":
      return "Deactivated";
    case "compromised":
      return "Compromised";
    case "destroyed":
      return key.compromisedAt === undefined ? "Destroyed" : "DestroyedCompromised";
  }
}

/** Returns the managed-key states a KMIP state change goes through, in order. */
function transitionsTo(key: ManagedKey, target: string, now: Date): KeyState[] {
  const current = effectiveState(key, now);
  switch (target) {
    case "Active":
      return ["active"];
    // Transit has no direct move from pre-active to deactivated. KMIP's
    // Revoke of a Pre-Active key therefore goes through active, and no use
    // happens in between because both steps are stored in one write.
    case "Deactivated":
      return current === "pre-active" ? ["active", "deactivated"] : ["deactivated"];
    case "Compromised":
      return current === "compromised" ? [] : ["compromised"];
    case "Destroyed":
      return ["destroyed"];
    case "DestroyedCompromised":
      return current === "compromised" ? ["destroyed"] : ["compromised", "destroyed"];
    default:
      throw wrongState(`a managed key cannot move to the KMIP state ${target}`);
  }
}

/** Moves a managed key to the state a KMIP State names, as `transitionState` allows. */
function withKmipState(key: ManagedKey, target: string, now: Date): ManagedKey {
  if (kmipStateOf(key, now) === target) return key;
  let next = key;
  try {
    for (const state of transitionsTo(key, target, now)) next = transitionState(next, state, now);
  } catch (error) {
    if (isKeywardError(error) && error.code === "invalid_state") throw wrongState(error.message);
    throw error;
  }
  return next;
}

/**
 * Returns whether transit may export the key: KMIP lets key material
 * leave the server in plaintext only when the object is Extractable
 * (true unless set to false) and not Sensitive.
 */
function exportableFor(object: KmipObject): boolean {
  return (
    attributeScalar(object, "Extractable") !== false &&
    attributeScalar(object, "Sensitive") !== true
  );
}

/** Returns the managed key with the state a new object's State starts in. */
function withInitialState(key: ManagedKey, object: KmipObject, now: Date): ManagedKey {
  // Only top-level fields change, so a shallow copy leaves `key` as it was.
  const next = { ...key };
  if (stateOf(object) === "Active") {
    next.state = "active";
    return next;
  }
  // A new object is Pre-Active until Activate, or until its Activation Date passes.
  next.state = "pre-active";
  const activation = attributeScalar(object, "Activation Date");
  if (typeof activation === "bigint" && activation * 1000n > BigInt(now.getTime())) {
    next.activationDate = new Date(Number(activation) * 1000).toISOString();
  } else {
    delete next.activationDate;
  }
  return next;
}

/** Returns the Unique Identifier of the object's first Link of the type, or undefined. */
export function linkedUid(object: KmipObject, linkType: string): string | undefined {
  for (const attribute of object.attributes) {
    if (attribute.name !== "Link" || attribute.value.type !== "Structure") continue;
    if (optionalEnum(attribute.value, "LinkType") !== linkType) continue;
    const target = child(attribute.value, "LinkedObjectIdentifier");
    if (target !== undefined) return textOf(target);
  }
  return undefined;
}

const CURVE_TYPES: Readonly<Record<string, KeyType>> = {
  prime256v1: "ecdsa-p256",
  secp384r1: "ecdsa-p384",
  secp521r1: "ecdsa-p521",
};

const RSA_TYPES: Readonly<Record<number, KeyType>> = {
  2048: "rsa-2048",
  3072: "rsa-3072",
  4096: "rsa-4096",
};

/** The transit key type and first-version material of an object that can become a managed key. */
interface AdoptableKey {
  type: KeyType;
  material: VersionMaterial;
}

/** Returns the transit key type of a private key, or undefined when transit has none for it. */
function privateKeyType(key: KeyObject): KeyType | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "rsa") return RSA_TYPES[details?.modulusLength ?? 0];
  if (key.asymmetricKeyType === "ec") return CURVE_TYPES[details?.namedCurve ?? ""];
  return undefined;
}

/**
 * Returns the transit type and material of a symmetric or private key
 * that a managed key can hold, or undefined for any other object. An
 * object qualifies only when `view` would give back the same bytes, so a
 * Get returns exactly what was registered.
 */
function adoptableKey(object: KmipObject): AdoptableKey | undefined {
  if (object.content === undefined || object.hsmObject !== undefined) return undefined;
  const hmacKey = randomBytes(32).toString("base64");
  try {
    if (object.objectType === "SymmetricKey") {
      const block = keyBlockOf(object.content);
      const algorithm =
        block === undefined ? undefined : optionalEnum(block, "CryptographicAlgorithm");
      const secret = secretBytes(object);
      if (algorithm !== "AES") return undefined;
      let type: KeyType;
      if (secret.length === 16) type = "aes128-gcm96";
      else if (secret.length === 32) type = "aes256-gcm96";
      else return undefined;
      return { type, material: { secret: secret.toString("base64"), hmacKey } };
    }
    if (object.objectType === "PrivateKey") {
      const key = privateKeyOf(object);
      const type = privateKeyType(key);
      if (type === undefined) return undefined;
      const material: VersionMaterial = {
        secret: key.export({ format: "der", type: "pkcs8" }).toString("base64"),
        hmacKey,
        publicKeyPem: createPublicKey(key).export({ format: "pem", type: "spki" }).toString(),
      };
      const rebuilt = materialItem(object.objectType, keyMaterialOf(object).format, {
        version: 1,
        createdAt: "",
        ...material,
      });
      const original = keyMaterialOf(object).material;
      if (rebuilt?.type !== "ByteString" || original.type !== "ByteString") return undefined;
      return Buffer.from(rebuilt.value).equals(Buffer.from(original.value))
        ? { type, material }
        : undefined;
    }
  } catch (error) {
    // Material in a form the operations cannot read stays in the record, as before.
    if (error instanceof KmipOperationError) return undefined;
    throw error;
  }
  return undefined;
}

/** Builds the Key Material item of a version in a Key Format Type, or undefined when it cannot. */
function materialItem(
  objectType: string,
  format: string,
  version: KeyVersion,
): KmipItem | undefined {
  if (objectType === "SymmetricKey") {
    if (version.secret === undefined) return undefined;
    const secret = Buffer.from(version.secret, "base64");
    if (format === "Raw") return bytes("KeyMaterial", secret);
    if (format === "TransparentSymmetricKey") return struct("KeyMaterial", [bytes("Key", secret)]);
    return undefined;
  }
  if (objectType === "PrivateKey") {
    if (version.secret === undefined) return undefined;
    const key = createPrivateKey({
      key: Buffer.from(version.secret, "base64"),
      format: "der",
      type: "pkcs8",
    });
    if (format === "PKCS_8")
      return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs8" }));
    if (format === "PKCS_1" && key.asymmetricKeyType === "rsa") {
      return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs1" }));
    }
    if (format === "ECPrivateKey" && key.asymmetricKeyType === "ec") {
      return bytes("KeyMaterial", key.export({ format: "der", type: "sec1" }));
    }
    return undefined;
  }
  if (objectType === "PublicKey") {
    if (version.publicKeyPem === undefined) return undefined;
    const key = createPublicKey(version.publicKeyPem);
    if (format === "X_509")
      return bytes("KeyMaterial", key.export({ format: "der", type: "spki" }));
    if (format === "PKCS_1" && key.asymmetricKeyType === "rsa") {
      return bytes("KeyMaterial", key.export({ format: "der", type: "pkcs1" }));
    }
  }
  return undefined;
}

/** Returns the content without its Key Value: what the record keeps of a managed key's object. */
function contentSkeleton(content: KmipItem | undefined): KmipItem | undefined {
  if (content === undefined || content.type !== "Structure") return content;
  const block = keyBlockOf(content);
  if (block === undefined) return content;
  const valueTag = tag("KeyValue");
  const formatTag = tag("KeyFormatType");
  const kept = block.value.filter((item) => item.tag !== valueTag);
  // The format the material was given in, so `view` rebuilds the same bytes.
  const format = kept.some((item) => item.tag === formatTag)
    ? []
    : [enumItem("KeyFormatType", "Raw")];
  const skeleton: StructureItem = { ...block, value: [...format, ...kept] };
  return { ...content, value: [skeleton] };
}

/**
 * Returns the content with the version's key material put back into the
 * skeleton's Key Block, or undefined when the version has no material in
 * the skeleton's Key Format Type.
 */
export function contentWithMaterial(
  objectType: string,
  skeleton: KmipItem | undefined,
  version: KeyVersion | undefined,
): KmipItem | undefined {
  const block = keyBlockOf(skeleton);
  if (skeleton?.type !== "Structure" || block === undefined || version === undefined) {
    return undefined;
  }
  const format = optionalEnum(block, "KeyFormatType") ?? "Raw";
  const material = materialItem(objectType, format, version);
  if (material === undefined) return undefined;
  const formatTag = tag("KeyFormatType");
  const rest = block.value.filter((item) => item.tag !== formatTag);
  const full = struct("KeyBlock", [
    enumItem("KeyFormatType", format),
    struct("KeyValue", [material]),
    ...rest,
  ]);
  return { ...skeleton, value: [full] };
}

/**
 * Returns the managed key if it still holds the version the reference
 * was made for, else undefined: the version was trimmed, or the key was
 * deleted and another key took its name.
 */
function boundKey(key: ManagedKey | undefined, ref: KmipManagedKeyRef): ManagedKey | undefined {
  if (key === undefined || ref.createdAt === undefined) return key;
  return key.versions[String(ref.version)]?.createdAt === ref.createdAt ? key : undefined;
}

/** The date attributes of the States a managed key reaches, with the key's time of each. */
const STATE_DATES: readonly {
  states: ReadonlySet<string>;
  attribute: string;
  time: (key: ManagedKey) => string | undefined;
}[] = [
  // Transit never moves a deactivated key back, so the date stays true in every later state.
  {
    states: new Set(["Deactivated", "Compromised", "Destroyed", "DestroyedCompromised"]),
    attribute: "Deactivation Date",
    time: (key) => key.deactivatedAt,
  },
  {
    states: new Set(["Compromised", "DestroyedCompromised"]),
    attribute: "Compromise Date",
    time: (key) => key.compromisedAt,
  },
  {
    states: new Set(["Destroyed", "DestroyedCompromised"]),
    attribute: "Destroy Date",
    time: (key) => key.destroyedAt,
  },
];

/**
 * Adds the date attributes of the State a managed key moved the object to,
 * such as Deactivation Date after transit deactivated the key. A date the
 * record has, from a KMIP operation, is kept.
 */
function withStateDates(object: KmipObject, state: string, key: ManagedKey): KmipObject {
  let dated = object;
  for (const { states, attribute, time } of STATE_DATES) {
    const iso = time(key);
    if (!states.has(state) || iso === undefined || findAttribute(dated, attribute)) continue;
    const seconds = BigInt(Math.floor(Date.parse(iso) / 1000));
    dated = { ...dated, attributes: [...dated.attributes, dateAttribute(attribute, seconds)] };
  }
  return dated;
}

/** True when the object keeps its State in its record (see the file comment). */
function keepsOwnState(object: KmipObject, ref: KmipManagedKeyRef): boolean {
  return ref.ownState === true || object.objectType === "PublicKey";
}

/**
 * Returns the State of an object that keeps its own: the record's, unless
 * the managed key went further, because a compromised or destroyed key
 * compromises or destroys every version, and a deactivated one deactivates
 * them. A public key's State is always its record's.
 */
function ownState(object: KmipObject, key: ManagedKey | undefined, now: Date): string {
  const recorded = stateOf(object);
  if (object.objectType === "PublicKey") return recorded;
  if (key === undefined) {
    return recorded === "Compromised" || recorded === "DestroyedCompromised"
      ? "DestroyedCompromised"
      : "Destroyed";
  }
  const shown = kmipStateOf(key, now);
  if (DESTROYED_STATES.has(recorded)) return recorded;
  if (DESTROYED_STATES.has(shown)) {
    return recorded === "Compromised" ? "DestroyedCompromised" : shown;
  }
  if (shown === "Compromised") return "Compromised";
  if (shown === "Deactivated" && (recorded === "Active" || recorded === "PreActive")) {
    return "Deactivated";
  }
  return recorded;
}

/**
 * The bridge between KMIP object records and the managed keys of a
 * transit mount (see the file comment).
 */
export class KmipManagedKeys {
  readonly #mounts: KmipKeyMounts;
  readonly #clock: () => Date;
  /**
   * The managed keys as they were before the running scopes first changed
   * them, by `<mount>/<name>` (undefined for a key that did not exist), so
   * `revert` can put them back. The object store opens a scope per group
   * commit, per work and per batch with Undo.
   */
  readonly #scopes = new Set<Map<string, RecordedKey>>();
  /**
   * The State each object had when the running work last read it, so a
   * write changes the managed key's state only when the operation changed
   * State, and not when transit changed the key since the read.
   */
  readonly #shownStates = new Map<string, string>();

  /** Forgets the States shown to the previous work; the object store calls it as each work starts. */
  beginWork(): void {
    this.#shownStates.clear();
  }

  constructor(mounts: KmipKeyMounts, clock: () => Date = () => new Date()) {
    this.#mounts = mounts;
    this.#clock = clock;
  }

  /**
   * Starts recording the managed keys that later writes change, and
   * returns the scope to give to `revert` or `close`.
   */
  open(): KmipManagedKeyScope {
    const scope = new Map<string, RecordedKey>();
    this.#scopes.add(scope);
    return scope;
  }

  /** Stops recording into the scope. */
  close(scope: KmipManagedKeyScope): void {
    this.#scopes.delete(scope as Map<string, RecordedKey>);
  }

  /**
   * Puts back the managed keys the scope wrote, as its first write found
   * them, and closes it: a key made since is deleted with its reference
   * record. A key that changed after the scope's last write to it, or
   * between two of its writes (a transit rotation, or another node), is
   * left as it is, because putting the old value back would erase that
   * change. Returns the names
   * (`<mount>/<name>`) of the keys left so.
   */
  async revert(scope: KmipManagedKeyScope): Promise<string[]> {
    const recorded = scope as Map<string, RecordedKey>;
    this.close(recorded);
    const kept: string[] = [];
    for (const [path, { mount, before, after, interleaved }] of recorded) {
      if (interleaved) {
        kept.push(path);
        continue;
      }
      const keys = await this.#mounts.keyStore(mount);
      const name = path.slice(mount.length + 1);
      const written = JSON.stringify(after);
      const reverted =
        before === undefined
          ? await keys.deleteReferenced(name, written)
          : (
              await keys.withLock(name, () =>
                keys.writeBatch([{ name, basedOn: written, next: before }]),
              )
            ).length === 1;
      if (!reverted) kept.push(path);
    }
    return kept;
  }

  /**
   * Records a write in each open scope: `basedOn` is the value it replaced
   * (undefined for a key it created) and `written` the value it stored.
   * A scope's first write keeps `basedOn` as the value to put back. A later
   * write whose `basedOn` is not the scope's last write marks the key as
   * interleaved, because someone else changed it in between.
   */
  #recordWrite(mount: string, basedOn: ManagedKey | undefined, written: ManagedKey): void {
    const path = `${mount}/${written.name}`;
    for (const scope of this.#scopes) {
      const entry = scope.get(path);
      if (entry === undefined) {
        scope.set(path, { mount, before: basedOn, after: written, interleaved: false });
        continue;
      }
      if (basedOn === undefined || JSON.stringify(basedOn) !== JSON.stringify(entry.after)) {
        entry.interleaved = true;
      }
      entry.after = written;
    }
  }

  /**
   * Changes a managed key through `KeyStore.update`, recorded for `revert`.
   * The value recorded as replaced is the one `change` ran on in the
   * successful attempt, read under the key's lock, so a rotation that
   * transit committed just before this write is never put back by an Undo.
   */
  async #change(
    keys: KeyStore,
    mount: string,
    name: string,
    change: (key: ManagedKey) => ManagedKey,
  ): Promise<ManagedKey> {
    let basedOn: ManagedKey | undefined;
    const updated = await keys.update(name, (current) => {
      basedOn = current;
      return change(current);
    });
    this.#recordWrite(mount, basedOn, updated);
    return updated;
  }

  /**
   * Returns the object as the operations see it: a record with a managed
   * key gets its key material and its State from the managed key. Other
   * records are returned unchanged. `operationRead` is false for the
   * store's own reads, which do not count as what an operation saw.
   */
  async view(stored: KmipObject, operationRead = true): Promise<KmipObject> {
    return (await this.inspect(stored, operationRead)).object;
  }

  /**
   * Returns the object as `view` does, and whether its managed key has a
   * version newer than the object's while no Replacement Object Link
   * names the object that shows it: a version that transit added, whose
   * objects `addVersionObjects` (transit-versions.ts) makes. A destroyed
   * managed key gets no new objects.
   */
  async inspect(
    stored: KmipObject,
    operationRead = true,
  ): Promise<{ object: KmipObject; newVersions: boolean }> {
    const ref = stored.managedKey;
    if (ref === undefined) return { object: stored, newVersions: false };
    const now = this.#clock();
    const key = boundKey(await (await this.#mounts.keyStore(ref.mount)).find(ref.name), ref);
    const newVersions =
      key !== undefined &&
      key.latestVersion > ref.version &&
      effectiveState(key, now) !== "destroyed" &&
      linkedUid(stored, "ReplacementObjectLink") === undefined;
    return { object: this.#shown(stored, ref, key, now, operationRead), newVersions };
  }

  /**
   * Returns the managed key that holds the reference's version, or
   * undefined when the version was trimmed or the key is gone.
   */
  async keyOf(ref: KmipManagedKeyRef): Promise<ManagedKey | undefined> {
    return boundKey(await (await this.#mounts.keyStore(ref.mount)).find(ref.name), ref);
  }

  /**
   * Returns the managed key a reference names, also when transit trimmed
   * the reference's own version from it. Returns undefined when the key is
   * missing, or when a key made after the version took the name.
   */
  async lineageKeyOf(ref: KmipManagedKeyRef): Promise<ManagedKey | undefined> {
    const key = await (await this.#mounts.keyStore(ref.mount)).find(ref.name);
    const bound = boundKey(key, ref);
    if (bound !== undefined || key === undefined || ref.createdAt === undefined) return bound;
    const trimmed =
      key.versions[String(ref.version)] === undefined && ref.version < key.minAvailableVersion;
    return trimmed && Date.parse(key.createdAt) <= Date.parse(ref.createdAt) ? key : undefined;
  }

  /** Returns the current time of the bridge's clock. */
  now(): Date {
    return this.#clock();
  }

  #shown(
    stored: KmipObject,
    ref: KmipManagedKeyRef,
    key: ManagedKey | undefined,
    now: Date,
    operationRead: boolean,
  ): KmipObject {
    const state = keepsOwnState(stored, ref)
      ? ownState(stored, key, now)
      : key === undefined
        ? "Destroyed"
        : kmipStateOf(key, now);
    if (operationRead) this.#shownStates.set(stored.uid, state);
    const { content: skeleton, ...rest } = stored;
    const stated = replaceAttribute(rest, "State", enumAttribute("State", state));
    const withState = key === undefined ? stated : withStateDates(stated, state, key);
    if (DESTROYED_STATES.has(state)) return withState;
    const content = contentWithMaterial(
      stored.objectType,
      skeleton,
      key?.versions[String(ref.version)],
    );
    return content === undefined ? withState : { ...withState, content };
  }

  /**
   * Returns the record to store for an object an operation writes, after
   * making the managed-key change it implies:
   *
   * - a new AES key or RSA or EC private key becomes a managed key named
   *   by its identifier, or a new version of the managed key of the object
   *   it replaces (Re-key);
   * - a new public key whose private key has a managed key refers to it;
   * - a State change of an object whose State is the managed key's moves
   *   the managed key, and Extractable and Sensitive set whether transit
   *   may export it;
   * - the Destroy of an object a Re-key replaced erases its version.
   *
   * `previous` is the object as `view` shows it before this write, or
   * undefined for a new object. Other objects are returned unchanged.
   *
   * `syncedLater` is true when the caller makes a synced commit after this
   * call (the object store's commit of a durable write). A new managed key
   * is then committed without a sync of its own, because SQLite's log
   * keeps commits in order and the later sync makes both durable.
   */
  async record(
    object: KmipObject,
    previous: KmipObject | undefined,
    find: FindObject,
    syncedLater = false,
  ): Promise<KmipObject> {
    if (object.hsmObject !== undefined) return object;
    const ref = object.managedKey;
    if (ref === undefined) {
      // A record stored with its material (made before managed keys, or not adopted) keeps it.
      if (previous !== undefined) return object;
      const adopted = await this.#adopt(object, find, syncedLater);
      return adopted === undefined ? object : this.#stripped(object, adopted);
    }
    return this.#stripped(object, await this.#update(object, previous, ref, find));
  }

  #stripped(object: KmipObject, ref: KmipManagedKeyRef): KmipObject {
    const { content, ...rest } = object;
    const skeleton = contentSkeleton(content);
    return { ...rest, ...(skeleton === undefined ? {} : { content: skeleton }), managedKey: ref };
  }

  async #adopt(
    object: KmipObject,
    find: FindObject,
    syncedLater: boolean,
  ): Promise<KmipManagedKeyRef | undefined> {
    if (object.objectType === "PublicKey") return this.#adoptPublicKey(object, find);
    const adoptable = adoptableKey(object);
    if (adoptable === undefined) return undefined;
    const replacedUid = linkedUid(object, "ReplacedObjectLink");
    const replaced = replacedUid === undefined ? undefined : await find(replacedUid);
    if (replaced?.managedKey !== undefined) {
      // The dispatcher authorized a Replaced Object Link of the request as a
      // Re-key of the linked object (see replaced-links.ts).
      // The versions of one managed key form one line, so an object is replaced once.
      const replacement = linkedUid(replaced, "ReplacementObjectLink");
      if (replacement !== undefined) {
        throw wrongState(
          `object ${replaced.uid} was already replaced by ${replacement}; re-key the replacement instead`,
        );
      }
      return this.#rotate(object, replaced.managedKey, adoptable);
    }
    const now = this.#clock();
    const mount = this.#mounts.mount;
    const keys = await this.#mounts.keyStore(mount);
    const created = withInitialState(
      createKey(
        object.uid,
        adoptable.type,
        { exportable: exportableFor(object) },
        now,
        adoptable.material,
      ),
      object,
      now,
    );
    // The key and its reference record are written in one commit.
    const result = await keys.create(created, {
      referencedBy: KMIP_KEY_HOLDER,
      ...(syncedLater ? { syncToDisk: false } : {}),
    });
    // A transit key of that name existed already; the object keeps its material in its record.
    if (!result.created) return undefined;
    // `create` checked in its transaction that no key had the name, so the
    // scopes record it as missing before this write.
    this.#recordWrite(mount, undefined, created);
    return { mount, name: object.uid, version: 1, createdAt: created.versions["1"]?.createdAt };
  }

  /** Adds the replacement's key as a new version of the replaced object's managed key. */
  async #rotate(
    object: KmipObject,
    replaced: KmipManagedKeyRef,
    adoptable: AdoptableKey,
  ): Promise<KmipManagedKeyRef> {
    const now = this.#clock();
    const keys = await this.#mounts.keyStore(replaced.mount);
    const rotated = await this.#change(keys, replaced.mount, replaced.name, (key) => {
      if (key.type !== adoptable.type) {
        throw new KmipOperationError(
          "InvalidField",
          `the replacement is a ${adoptable.type} key, but the replaced object's managed key is ${key.type}`,
        );
      }
      let next: ManagedKey;
      try {
        next = rotateKey(key, now, adoptable.material);
      } catch (error) {
        if (isKeywardError(error) && error.code === "invalid_state")
          throw wrongState(error.message);
        throw error;
      }
      next = withInitialState(next, object, now);
      // Every version is exported together, so one object that must not leave keeps them all in.
      next.exportable = key.exportable && exportableFor(object);
      return next;
    });
    return {
      mount: replaced.mount,
      name: replaced.name,
      version: rotated.latestVersion,
      createdAt: rotated.versions[String(rotated.latestVersion)]?.createdAt,
    };
  }

  /** Refers a new public key to its private key's managed key, when they hold the same key pair. */
  async #adoptPublicKey(
    object: KmipObject,
    find: FindObject,
  ): Promise<KmipManagedKeyRef | undefined> {
    const privateUid = linkedUid(object, "PrivateKeyLink");
    const privateKey = privateUid === undefined ? undefined : await find(privateUid);
    const ref = privateKey?.managedKey;
    if (ref === undefined || object.content === undefined) return undefined;
    const key = await (await this.#mounts.keyStore(ref.mount)).find(ref.name);
    const pem = key?.versions[String(ref.version)]?.publicKeyPem;
    if (pem === undefined) return undefined;
    let format: string;
    try {
      format = keyMaterialOf(object).format;
      const spki = publicKeyOf(object).export({ format: "der", type: "spki" });
      const stored = createPublicKey(pem).export({ format: "der", type: "spki" });
      if (!spki.equals(stored)) return undefined;
    } catch (error) {
      if (error instanceof KmipOperationError) return undefined;
      throw error;
    }
    const rebuilt = materialItem("PublicKey", format, {
      version: ref.version,
      createdAt: "",
      publicKeyPem: pem,
    });
    const original = keyMaterialOf(object).material;
    if (rebuilt?.type !== "ByteString" || original.type !== "ByteString") return undefined;
    if (!Buffer.from(rebuilt.value).equals(Buffer.from(original.value))) return undefined;
    return {
      mount: ref.mount,
      name: ref.name,
      version: ref.version,
      ...(ref.createdAt === undefined ? {} : { createdAt: ref.createdAt }),
    };
  }

  async #update(
    object: KmipObject,
    previous: KmipObject | undefined,
    ref: KmipManagedKeyRef,
    find: FindObject,
  ): Promise<KmipManagedKeyRef> {
    const keys = await this.#mounts.keyStore(ref.mount);
    const key = boundKey(await keys.find(ref.name), ref);
    if (key === undefined) return ref;
    const now = this.#clock();
    const target = stateOf(object);
    if (keepsOwnState(object, ref)) {
      const erasing =
        object.objectType !== "PublicKey" &&
        DESTROYED_STATES.has(target) &&
        (previous === undefined || !DESTROYED_STATES.has(stateOf(previous)));
      if (erasing && ref.version < key.latestVersion && key.versions[String(ref.version)]) {
        await this.#change(keys, ref.mount, ref.name, (current) =>
          withoutVersion(current, ref.version, now),
        );
      }
      // A replaced object that must not leave the server keeps every version in too.
      if (object.objectType !== "PublicKey" && key.exportable && !exportableFor(object)) {
        await this.#change(keys, ref.mount, ref.name, (current) => ({
          ...structuredClone(current),
          exportable: false,
          updatedAt: now.toISOString(),
        }));
      }
      return ref;
    }
    // A Re-key made a newer version for the replacement: from now on this
    // object keeps the State it has in its own record.
    if (
      ref.version < key.latestVersion &&
      linkedUid(object, "ReplacementObjectLink") !== undefined
    ) {
      return { ...ref, ownState: true };
    }
    // Destroying the replacement would destroy the whole managed key, with
    // the versions of the objects it replaced.
    const replacedUid = linkedUid(object, "ReplacedObjectLink");
    if (DESTROYED_STATES.has(target) && replacedUid !== undefined) {
      const replaced = await find(replacedUid);
      if (replaced !== undefined && !DESTROYED_STATES.has(stateOf(replaced))) {
        throw wrongState(
          `object ${object.uid} shares its managed key with the object it replaced, ${replacedUid}, which is not destroyed; destroy that object first`,
        );
      }
    }
    // Once one object of the managed key must not leave the server, transit exports none of its versions.
    const exportable = key.exportable && exportableFor(object);
    const shown = this.#shownStates.get(object.uid) ?? (previous && stateOf(previous));
    const stateChange = target !== shown && kmipStateOf(key, now) !== target;
    this.#shownStates.set(object.uid, target);
    if (stateChange || key.exportable !== exportable) {
      await this.#change(keys, ref.mount, ref.name, (current) => {
        const next = stateChange ? withKmipState(current, target, now) : current;
        if (next.exportable === exportable) return next;
        return { ...structuredClone(next), exportable, updatedAt: now.toISOString() };
      });
    }
    return ref;
  }
}

/**
 * Removes one version of a managed key, as KMIP's Destroy of an object a
 * Re-key replaced does. Transit then rejects that version's ciphertexts
 * and signatures as from a trimmed version.
 */
function withoutVersion(key: ManagedKey, version: number, now: Date): ManagedKey {
  if (version >= key.latestVersion) return key;
  const next = structuredClone(key);
  delete next.versions[String(version)];
  next.updatedAt = now.toISOString();
  return next;
}
