import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StructureItem } from "../../src/kmip/item.ts";
import { decodeJson, encodeJson } from "../../src/kmip/json.ts";
import { KmipDispatcher } from "../../src/kmip/server/dispatcher.ts";
import { KmipIdentityResolver, type KmipPeerCertificate } from "../../src/kmip/server/identity.ts";
import { KmipIdentityStore } from "../../src/kmip/server/identity-store.ts";
import {
  child,
  children,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../src/kmip/server/items.ts";
import { KmipObjectStore } from "../../src/kmip/server/object-store.ts";
import { Acl } from "../../src/policy/acl.ts";
import { parsePolicy } from "../../src/policy/parse.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";
import { requestMessage, resultReason, resultStatus } from "./server/helpers.ts";

const POLICIES: Record<string, string> = {
  owner: `path "kmip/*" { capabilities = ["create", "read", "update"] }`,
  // May re-key only the key pairs whose private key identifier starts with "allowed-".
  rekeyer: `path "kmip/re-key-key-pair/allowed-*" { capabilities = ["create"] }`,
};

async function setup() {
  const barrier = new MemoryBarrier();
  const identities = new KmipIdentityStore(barrier);
  const dispatcher = new KmipDispatcher({
    store: new KmipObjectStore(barrier),
    identities: new KmipIdentityResolver({
      store: identities,
      source: "keyward",
      policies: {
        acl: async (names: readonly string[]) =>
          Acl.compile(
            names
              .filter((name) => Object.hasOwn(POLICIES, name))
              .map((name) => parsePolicy(name, POLICIES[name]!)),
          ),
      },
    }),
  });
  const credential = async (role: string, serial: string): Promise<KmipPeerCertificate> => {
    await identities.writeRole({
      name: role,
      policies: [role],
      allowedCommonNames: [],
      ttlSeconds: 3600,
      maxTtlSeconds: 7200,
      keyType: "ec",
      keyBits: 256,
    });
    const peer = {
      commonName: role,
      organizationalUnits: [role],
      serialNumber: serial,
      fingerprint: serial.repeat(32),
    };
    await identities.writeCredential({
      serialNumber: serial,
      role,
      commonName: role,
      fingerprint: peer.fingerprint,
      issuedAt: new Date().toISOString(),
      notAfter: new Date(Date.now() + 3_600_000).toISOString(),
    });
    return peer;
  };
  return {
    dispatcher,
    owner: await credential("owner", "21"),
    rekeyer: await credential("rekeyer", "22"),
  };
}

/** Sends one Batch Item through the JSON encoding, as KMIP over HTTP does, and returns its response. */
async function sendJson(
  dispatcher: KmipDispatcher,
  peer: KmipPeerCertificate,
  operation: string,
  payload: Parameters<typeof struct>[1],
): Promise<StructureItem> {
  const request = decodeJson(encodeJson(requestMessage([2, 1], [[operation, payload]])));
  const response = await dispatcher.handleMessage(request, { certificate: peer });
  return children(response as StructureItem, "BatchItem")[0] as StructureItem;
}

describe("re-key key pair policy path", () => {
  it("ignores a Unique Identifier beside the Private Key Unique Identifier", async () => {
    const { dispatcher, owner, rekeyer } = await setup();
    const pair = await sendJson(dispatcher, owner, "CreateKeyPair", [
      struct("CommonAttributes", [
        enumItem("CryptographicAlgorithm", "EC"),
        integer("CryptographicLength", 256),
      ]),
    ]);
    const payload = child(pair, "ResponsePayload") as StructureItem;
    const privateUid = textOf(child(payload, "PrivateKeyUniqueIdentifier")!);

    // The policy grants "allowed-x", but the operation acts on privateUid.
    const smuggled = await sendJson(dispatcher, rekeyer, "ReKeyKeyPair", [
      text("UniqueIdentifier", "allowed-x"),
      text("PrivateKeyUniqueIdentifier", privateUid),
    ]);
    assert.equal(resultStatus(smuggled), "OperationFailed");
    assert.equal(resultReason(smuggled), "PermissionDenied");
    const message = textOf(child(smuggled, "ResultMessage")!);
    assert.match(message, new RegExp(`kmip/re-key-key-pair/${privateUid}`));
  });

  it("checks the Private Key Unique Identifier it acts on", async () => {
    const { dispatcher, rekeyer } = await setup();
    const granted = await sendJson(dispatcher, rekeyer, "ReKeyKeyPair", [
      text("UniqueIdentifier", "other"),
      text("PrivateKeyUniqueIdentifier", "allowed-missing"),
    ]);
    // The policy allows the path, so the operation runs and finds no such key.
    assert.equal(resultReason(granted), "ObjectNotFound");
  });
});
