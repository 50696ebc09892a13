import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { DeviceApiError, type DeviceClient } from "../../src/agent/client.ts";
import type { WireguardArtifactConfig } from "../../src/agent/config.ts";
import type { Artifact } from "../../src/agent/protocol.ts";
import { generateWireguardKey, type Keyring } from "../../src/agent/wireguard-keys.ts";
import { registerWireguardKey } from "../../src/agent/wireguard-registration.ts";

const ID = "wireguard:wireguard:office:alpha";
const NOW = new Date("2030-01-01T00:00:00Z");

const entry = {
  kind: "wireguard",
  id: ID,
  mount: "wireguard",
  network: "office",
  peer: "alpha",
  format: "wg",
} as WireguardArtifactConfig;

/** Returns a client stand-in that records posted keys and the keyring file at the moment of each post. */
function fakeClient(
  stateDir: string,
  answer: (publicKey: string) => unknown = () => ({
    key_version: 1,
    activate_at: NOW.toISOString(),
  }),
) {
  const posts: { publicKey: string; keyringOnDisk: string }[] = [];
  const client = {
    async request(_method: string, _path: string, options: { body: { public_key: string } }) {
      const file = join(stateDir, "wireguard-keys.json");
      posts.push({
        publicKey: options.body.public_key,
        keyringOnDisk: existsSync(file) ? readFileSync(file, "utf8") : "",
      });
      const body = answer(options.body.public_key);
      if (body instanceof Error) throw body;
      return { status: 200, body };
    },
  } as unknown as DeviceClient;
  return { client, posts };
}

function artifact(
  publicKey: string | null,
  options: { rotate?: boolean; upcoming?: string } = {},
): Artifact {
  const fields = { public_key: publicKey, rotate_key: options.rotate ?? false };
  return {
    id: ID,
    kind: "wireguard",
    version: 3,
    fields,
    secrets: {},
    next:
      options.upcoming === undefined
        ? null
        : {
            version: 4,
            activate_at: new Date(NOW.getTime() + 5000).toISOString(),
            fields: { ...fields, public_key: options.upcoming },
            secrets: {},
          },
  };
}

function setup(answer?: (publicKey: string) => unknown) {
  const stateDir = mkdtempSync(join(tmpdir(), "keyward-agent-wgreg-"));
  const { client, posts } = fakeClient(stateDir, answer);
  const keyring: Keyring = { format: 1, peers: {} };
  const context = { client, stateDir, log: pino({ level: "silent" }), now: () => NOW };
  const register = (state: Artifact, etag: string) =>
    registerWireguardKey(context, entry, state, etag, keyring);
  return { stateDir, posts, keyring, register };
}

describe("wireguard key registration", () => {
  it("first key saved then sent", async () => {
    const { posts, keyring, register } = setup();
    assert.equal(await register(artifact(null), "e1"), true);
    const current = keyring.peers[ID]?.current;
    assert.ok(current);
    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.publicKey, current.public_key);
    assert.ok(posts[0]?.keyringOnDisk.includes(current.private_key), "sent before it was saved");
    assert.equal(current.key_version, 1);
  });

  it("shown key not sent", async () => {
    const { posts, keyring, register } = setup();
    const current = generateWireguardKey();
    keyring.peers[ID] = { current };
    assert.equal(await register(artifact(current.public_key), "e1"), false);
    assert.equal(posts.length, 0);
  });

  it("foreign key gets ours sent", async () => {
    const { posts, keyring, register } = setup();
    const current = generateWireguardKey();
    keyring.peers[ID] = { current };
    const foreign = generateWireguardKey().public_key;
    assert.equal(await register(artifact(foreign), "e1"), true);
    assert.equal(posts[0]?.publicKey, current.public_key);
  });

  it("rotation stages a saved key", async () => {
    const activation = new Date(NOW.getTime() + 2000).toISOString();
    const { posts, keyring, register } = setup(() => ({ key_version: 2, activate_at: activation }));
    const current = generateWireguardKey();
    keyring.peers[ID] = { current };
    assert.equal(await register(artifact(current.public_key, { rotate: true }), "e1"), true);
    const staged = keyring.peers[ID]?.staged;
    assert.ok(staged);
    assert.notEqual(staged.public_key, current.public_key);
    assert.equal(keyring.peers[ID]?.current?.public_key, current.public_key);
    assert.equal(posts[0]?.publicKey, staged.public_key);
    assert.ok(posts[0]?.keyringOnDisk.includes(staged.private_key), "sent before it was saved");
    assert.ok(posts[0]?.keyringOnDisk.includes(current.private_key), "old key dropped too early");
    assert.equal(staged.activate_at, activation);

    // Still asked to rotate while the staged key waits: no second key.
    assert.equal(await register(artifact(current.public_key, { rotate: true }), "e2"), false);
    assert.equal(keyring.peers[ID]?.staged?.public_key, staged.public_key);
    assert.equal(posts.length, 1);
  });

  it("accepted key waits for activation", async () => {
    const activation = new Date(NOW.getTime() + 2000).toISOString();
    const { posts, keyring, register } = setup();
    const current = generateWireguardKey();
    const staged = { ...generateWireguardKey(), key_version: 2, activate_at: activation };
    keyring.peers[ID] = { current, staged };
    // `next` shows another peer's earlier activation, where this peer's key is still the old one.
    const state = artifact(current.public_key, { upcoming: current.public_key });
    assert.equal(await register(state, "e3"), false);
    assert.equal(posts.length, 0);
  });

  it("lost key sent again", async () => {
    const { posts, keyring, register } = setup();
    const long = new Date(NOW.getTime() - 3_600_000).toISOString();
    const current = { ...generateWireguardKey(), key_version: 1, activate_at: long };
    keyring.peers[ID] = { current };
    assert.equal(await register(artifact(null), "e4"), true);
    assert.equal(posts[0]?.publicKey, current.public_key);
  });

  it("activation promotes staged key", async () => {
    const { posts, keyring, stateDir, register } = setup();
    const current = generateWireguardKey();
    const staged = generateWireguardKey();
    keyring.peers[ID] = { current, staged };
    assert.equal(await register(artifact(staged.public_key), "e5"), false);
    assert.equal(keyring.peers[ID]?.current?.public_key, staged.public_key);
    assert.equal(keyring.peers[ID]?.staged, undefined);
    const onDisk = readFileSync(join(stateDir, "wireguard-keys.json"), "utf8");
    assert.ok(!onDisk.includes(current.private_key), "old private key still stored");
    assert.ok(onDisk.includes(staged.private_key));
    assert.equal(posts.length, 0);
  });

  it("rejected key retried on change", async () => {
    const { posts, keyring, register } = setup(
      () => new DeviceApiError("forbidden", 403, "permission_denied"),
    );
    assert.equal(await register(artifact(null), "e6"), true);
    assert.equal(keyring.peers[ID]?.current?.posted_etag, "e6");
    assert.equal(await register(artifact(null), "e6"), false);
    assert.equal(posts.length, 1);
    assert.equal(await register(artifact(null), "e7"), true);
    assert.equal(posts.length, 2);
  });

  it("network error is thrown", async () => {
    const { keyring, stateDir, register } = setup(
      () => new DeviceApiError("connect ECONNREFUSED", undefined),
    );
    await assert.rejects(register(artifact(null), "e8"), /ECONNREFUSED/);
    const current = keyring.peers[ID]?.current;
    assert.ok(current);
    assert.equal(current.posted_etag, undefined);
    const onDisk = readFileSync(join(stateDir, "wireguard-keys.json"), "utf8");
    assert.ok(onDisk.includes(current.private_key));
  });
});
