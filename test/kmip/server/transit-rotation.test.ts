import assert from "node:assert/strict";
import { createPublicKey, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import { bytes, child, enumItem, integer, struct } from "../../../src/kmip/server/items.ts";
import { payloadOf, resultReason } from "./helpers.ts";
import {
  attributesOf,
  createAes,
  createEcPair,
  id,
  keyBytes,
  linksOf,
  locateByName,
  MOUNT,
  openNode,
  rotateThroughTransit,
  stateOf,
  type TestNode,
} from "./transit-rotation-helpers.ts";

function gcm(): KmipItem {
  return struct("CryptographicParameters", [
    enumItem("BlockCipherMode", "GCM"),
    integer("TagLength", 16),
  ]);
}

describe("transit rotation of KMIP keys", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: true });
  });

  after(async () => {
    await node.close();
  });

  it("rotation shows as a replacement object", async () => {
    const uid = await createAes(node, "rotated-once");
    const oldMaterial = await keyBytes(node, uid);
    const iv = randomBytes(12);
    const plaintext = Buffer.from("sealed before the rotation");
    const encrypted = payloadOf(
      await node.call("Encrypt", [
        id(uid),
        gcm(),
        bytes("Data", plaintext),
        bytes("IVCounterNonce", iv),
      ]),
    );

    assert.equal(await rotateThroughTransit(node, uid), 2);

    // The Name moves to the replacement, as after Re-key.
    const located = await locateByName(node, "rotated-once");
    assert.equal(located.length, 1);
    const [newUid] = located;
    assert.notEqual(newUid, uid);

    assert.deepEqual(await linksOf(node, uid), { ReplacementObjectLink: newUid });
    assert.deepEqual(await linksOf(node, newUid!), { ReplacedObjectLink: uid });
    assert.equal(await stateOf(node, newUid!), "Active");
    assert.equal(await stateOf(node, uid), "Active");

    const newMaterial = await keyBytes(node, newUid!);
    assert.equal(newMaterial.length, 32);
    assert.notDeepEqual(newMaterial, oldMaterial);
    assert.deepEqual(await keyBytes(node, uid), oldMaterial);

    const attributes = await attributesOf(node, newUid!);
    assert.equal(child(attributes, "CryptographicLength")?.value, 256);
    assert.equal(typeof child(attributes, "ActivationDate")?.value, "bigint");
    assert.equal(child(attributes, "CryptographicUsageMask")?.value, 4 | 8);

    const decrypted = payloadOf(
      await node.call("Decrypt", [
        id(uid),
        gcm(),
        bytes("Data", Buffer.from(child(encrypted, "Data")!.value as Uint8Array)),
        bytes("IVCounterNonce", iv),
        bytes(
          "AuthenticatedEncryptionTag",
          Buffer.from(child(encrypted, "AuthenticatedEncryptionTag")!.value as Uint8Array),
        ),
      ]),
    );
    assert.deepEqual(Buffer.from(child(decrypted, "Data")!.value as Uint8Array), plaintext);
  });

  it("new object follows the managed key's state", async () => {
    const uid = await createAes(node, "state-follows");
    await rotateThroughTransit(node, uid);
    const [newUid] = await locateByName(node, "state-follows");
    const moved = await node.api("POST", `${MOUNT}/keys/${uid}/state`, { state: "deactivated" });
    assert.equal(moved.statusCode, 200, moved.body);
    assert.equal(await stateOf(node, newUid!), "Deactivated");
    // A replaced object shows the managed key's deactivation too.
    assert.equal(await stateOf(node, uid), "Deactivated");
  });

  it("transit state changes set the KMIP dates", async () => {
    const uid = await createAes(node, "dated");
    const before = BigInt(Math.floor(Date.now() / 1000));
    const deactivated = await node.api("POST", `${MOUNT}/keys/${uid}/state`, {
      state: "deactivated",
    });
    assert.equal(deactivated.statusCode, 200, deactivated.body);
    const deactivation = child(await attributesOf(node, uid), "DeactivationDate")?.value;
    assert.equal(typeof deactivation, "bigint");
    assert.ok((deactivation as bigint) >= before);

    const compromised = await node.api("POST", `${MOUNT}/keys/${uid}/state`, {
      state: "compromised",
    });
    assert.equal(compromised.statusCode, 200, compromised.body);
    assert.equal(await stateOf(node, uid), "Compromised");
    assert.equal(typeof child(await attributesOf(node, uid), "CompromiseDate")?.value, "bigint");

    const destroyed = await node.api("POST", `${MOUNT}/keys/${uid}/state`, {
      state: "destroyed",
    });
    assert.equal(destroyed.statusCode, 200, destroyed.body);
    assert.equal(await stateOf(node, uid), "DestroyedCompromised");
    const attributes = await attributesOf(node, uid);
    assert.equal(typeof child(attributes, "DestroyDate")?.value, "bigint");
    // The dates of the earlier states stay.
    assert.equal(typeof child(attributes, "CompromiseDate")?.value, "bigint");
    assert.equal(child(attributes, "DeactivationDate")?.value, deactivation);

    const read = await node.api("GET", `${MOUNT}/keys/${uid}`);
    assert.equal(typeof read.json().data.destroyed_at, "string");
    assert.equal(typeof read.json().data.deactivated_at, "string");
  });

  it("two rotations give a chain", async () => {
    const uid = await createAes(node, "rotated-twice");
    await rotateThroughTransit(node, uid);
    await rotateThroughTransit(node, uid);

    const named = await locateByName(node, "rotated-twice");
    assert.equal(named.length, 1);
    const first = uid;
    const second = (await linksOf(node, first)).ReplacementObjectLink;
    const third = named[0];
    assert.ok(second !== undefined);
    const located = [third!, second, first];
    assert.deepEqual(await linksOf(node, first), { ReplacementObjectLink: second });
    assert.deepEqual(await linksOf(node, second!), {
      ReplacedObjectLink: first,
      ReplacementObjectLink: third,
    });
    assert.deepEqual(await linksOf(node, third!), { ReplacedObjectLink: second });
    const materials = await Promise.all(located.map((each) => keyBytes(node, each)));
    assert.equal(new Set(materials.map((material) => material.toString("hex"))).size, 3);
  });

  it("each rotation adds one object", async () => {
    const before = (await node.storedObjects()).length;
    const uid = await createAes(node, "counted");
    await rotateThroughTransit(node, uid);
    await node.kmip!.managedKeySync.idle();
    assert.equal((await node.storedObjects()).length, before + 2);
    await locateByName(node, "counted");
    assert.equal((await node.storedObjects()).length, before + 2);
  });

  it("Re-key of a rotated object names its replacement", async () => {
    const uid = await createAes(node, "rekey-after-rotation");
    await rotateThroughTransit(node, uid);
    const rekeyed = await node.call("ReKey", [id(uid)]);
    assert.equal(resultReason(rekeyed), "WrongKeyLifecycleState");
  });

  it("key pair rotation gives a new pair", async () => {
    const { privateUid, publicUid } = await createEcPair(node);
    const oldPublic = await keyBytes(node, publicUid);
    await rotateThroughTransit(node, privateUid);

    const privateLinks = await linksOf(node, privateUid);
    const newPrivate = privateLinks.ReplacementObjectLink;
    assert.ok(newPrivate !== undefined);
    assert.equal(privateLinks.PublicKeyLink, publicUid);
    const publicLinks = await linksOf(node, publicUid);
    const newPublic = publicLinks.ReplacementObjectLink;
    assert.ok(newPublic !== undefined);
    assert.equal(publicLinks.PrivateKeyLink, privateUid);

    assert.deepEqual(await linksOf(node, newPrivate), {
      ReplacedObjectLink: privateUid,
      PublicKeyLink: newPublic,
    });
    assert.deepEqual(await linksOf(node, newPublic), {
      ReplacedObjectLink: publicUid,
      PrivateKeyLink: newPrivate,
    });
    assert.equal(await stateOf(node, newPrivate), "Active");
    assert.equal(await stateOf(node, newPublic), "Active");

    const newPublicBytes = await keyBytes(node, newPublic);
    assert.notDeepEqual(newPublicBytes, oldPublic);
    const transitKey = await node.api("GET", `${MOUNT}/keys/${privateUid}`);
    const pem = transitKey.json().data.keys["2"].public_key as string;
    assert.deepEqual(
      createPublicKey({ key: newPublicBytes, format: "der", type: "spki" }).export({
        format: "der",
        type: "spki",
      }),
      createPublicKey(pem).export({ format: "der", type: "spki" }),
    );
  });
});
