import assert from "node:assert/strict";
import { createDecipheriv, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import {
  bytes,
  child,
  enumItem,
  enumName,
  integer,
  struct,
  text,
} from "../../../src/kmip/server/items.ts";
import { callServer } from "../../helpers/http.ts";
import type { ServerProcess } from "../../helpers/server-process.ts";
import { activeSince, payloadOf, uidOf } from "./helpers.ts";
import { type ClientCredential, callTls, freePort, startKmipDevServer } from "./server-helpers.ts";

const EVERY_KMIP_OPERATION = `
path "kmip/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

describe("keyward server with KMIP objects as transit keys", () => {
  let server: ServerProcess | undefined;
  let kmipPort = 0;
  let credential: ClientCredential;

  async function api(method: string, path: string, body?: object) {
    return callServer(server!.address, method, path, body, server!.rootToken);
  }

  async function start(dataDir?: string): Promise<void> {
    server = await startKmipDevServer(kmipPort, dataDir === undefined ? {} : { dataDir });
  }

  async function call(operation: string, payload: readonly KmipItem[]) {
    return callTls(kmipPort, credential, operation, payload);
  }

  async function createActiveAes(): Promise<string> {
    const created = payloadOf(
      await call("Create", [
        enumItem("ObjectType", "SymmetricKey"),
        struct("Attributes", [
          enumItem("CryptographicAlgorithm", "AES"),
          integer("CryptographicLength", 256),
          integer("CryptographicUsageMask", 4 | 8),
          activeSince(),
        ]),
      ]),
    );
    return uidOf(created);
  }

  async function kmipState(uid: string): Promise<string> {
    const attributes = child(
      payloadOf(await call("GetAttributes", [text("UniqueIdentifier", uid)])),
      "Attributes",
    ) as StructureItem;
    return enumName(child(attributes, "State")!);
  }

  async function kmipKeyBytes(uid: string): Promise<Buffer> {
    const payload = payloadOf(await call("Get", [text("UniqueIdentifier", uid)]));
    const block = child(
      child(payload, "SymmetricKey") as StructureItem,
      "KeyBlock",
    ) as StructureItem;
    const value = child(block, "KeyValue") as StructureItem;
    return Buffer.from(child(value, "KeyMaterial")!.value as Uint8Array);
  }

  before(async () => {
    kmipPort = await freePort();
    await start();
    const ca = await (await fetch(`${server!.address}/v1/sys/kmip/ca/pem`)).text();
    const policy = await api("PUT", "sys/policies/acl/kmip-all", { policy: EVERY_KMIP_OPERATION });
    assert.equal(policy.status, 204);
    const role = await api("POST", "sys/kmip/roles/app", { token_policies: ["kmip-all"] });
    assert.equal(role.status, 204);
    const generated = await api("POST", "sys/kmip/roles/app/credential/generate", {});
    assert.equal(generated.status, 200, JSON.stringify(generated.body));
    credential = {
      cert: generated.body.data.certificate,
      key: generated.body.data.private_key,
      ca,
    };
  });

  after(async () => {
    await server?.stop();
  });

  it("KMIP key appears in the kmip-keys mount", async () => {
    const uid = await createActiveAes();
    const read = await api("GET", `kmip-keys/keys/${uid}`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.data.type, "aes256-gcm96");
    assert.equal(read.body.data.state, "active");
    const listed = await api("GET", "kmip-keys/keys?list=true");
    assert.equal(listed.status, 200);
    assert.ok(listed.body.data.keys.includes(uid));

    const plaintext = Buffer.from("through transit").toString("base64");
    const encrypted = await api("POST", `kmip-keys/encrypt/${uid}`, { plaintext });
    assert.equal(encrypted.status, 200, JSON.stringify(encrypted.body));
    const decrypted = await api("POST", `kmip-keys/decrypt/${uid}`, {
      ciphertext: encrypted.body.data.ciphertext,
    });
    assert.equal(decrypted.body.data.plaintext, plaintext);
  });

  it("KMIP GCM ciphertext opens with the exported key", async () => {
    const uid = await createActiveAes();
    const iv = randomBytes(12);
    const plaintext = Buffer.from("encrypted over KMIP");
    const encrypted = payloadOf(
      await call("Encrypt", [
        text("UniqueIdentifier", uid),
        struct("CryptographicParameters", [
          enumItem("BlockCipherMode", "GCM"),
          integer("TagLength", 16),
        ]),
        bytes("Data", plaintext),
        bytes("IVCounterNonce", iv),
      ]),
    );
    const exported = await api("GET", `kmip-keys/export/encryption-key/${uid}/1`);
    assert.equal(exported.status, 200, JSON.stringify(exported.body));
    const key = Buffer.from(exported.body.data.keys["1"], "base64");
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAuthTag(
      Buffer.from(child(encrypted, "AuthenticatedEncryptionTag")!.value as Uint8Array),
    );
    const data = Buffer.from(child(encrypted, "Data")!.value as Uint8Array);
    assert.deepEqual(Buffer.concat([decipher.update(data), decipher.final()]), plaintext);
  });

  it("states agree in both directions", async () => {
    const uid = await createActiveAes();
    payloadOf(
      await call("Revoke", [
        text("UniqueIdentifier", uid),
        struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
      ]),
    );
    assert.equal((await api("GET", `kmip-keys/keys/${uid}`)).body.data.state, "deactivated");
    const moved = await api("POST", `kmip-keys/keys/${uid}/state`, { state: "compromised" });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(await kmipState(uid), "Compromised");
  });

  it("transit delete of a KMIP key is rejected", async () => {
    const uid = await createActiveAes();
    const configured = await api("POST", `kmip-keys/keys/${uid}/config`, {
      deletion_allowed: true,
    });
    assert.equal(configured.status, 200, JSON.stringify(configured.body));
    const deleted = await api("DELETE", `kmip-keys/keys/${uid}`);
    assert.equal(deleted.status, 409);
    assert.equal(deleted.body.code, "deletion_not_allowed");
    assert.match(deleted.body.errors[0], /KMIP/);
    const unmounted = await api("DELETE", "sys/mounts/kmip-keys");
    assert.equal(unmounted.status, 409);
    assert.equal(unmounted.body.code, "deletion_not_allowed");
    assert.equal((await api("GET", `kmip-keys/keys/${uid}`)).status, 200);
  });

  it("unknown key is not found", async () => {
    const read = await api("GET", "kmip-keys/keys/01a245ae-e783-7000-898e-52be367a1267");
    assert.equal(read.status, 404);
  });

  it("restart keeps keys and states", async () => {
    const uid = await createActiveAes();
    const material = await kmipKeyBytes(uid);
    payloadOf(
      await call("Revoke", [
        text("UniqueIdentifier", uid),
        struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
      ]),
    );
    const dataDir = server!.dataDir;
    await server!.stop();
    server = undefined;
    await start(dataDir);

    assert.deepEqual(await kmipKeyBytes(uid), material);
    assert.equal(await kmipState(uid), "Deactivated");
    const read = await api("GET", `kmip-keys/keys/${uid}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.data.state, "deactivated");
  });

  it("unmount waits until the keys are destroyed", async () => {
    await createActiveAes();
    const listed = await api("GET", "kmip-keys/keys?list=true");
    const names = listed.body.data.keys as string[];
    assert.ok(names.length > 0);
    assert.equal((await api("DELETE", "sys/mounts/kmip-keys")).status, 409);
    for (const name of names) {
      // The key may already be deactivated or compromised, from which it moves straight on.
      await api("POST", `kmip-keys/keys/${name}/state`, { state: "deactivated" });
      const destroyed = await api("POST", `kmip-keys/keys/${name}/state`, { state: "destroyed" });
      assert.equal(destroyed.status, 200, JSON.stringify(destroyed.body));
    }
    const unmounted = await api("DELETE", "sys/mounts/kmip-keys");
    assert.ok(unmounted.status < 300, JSON.stringify(unmounted.body));
  });
});
