import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CompactEncrypt } from "jose";
import type { ArtifactConfig } from "../../src/agent/config.ts";
import { encryptionJwk } from "../../src/agent/identity.ts";
import { type InstallContext, installArtifact } from "../../src/agent/install.ts";
import type { Artifact } from "../../src/agent/protocol.ts";
import { emptyState } from "../../src/agent/state.ts";
import { PRIVATE_KEY_PLACEHOLDER } from "../../src/agent/wireguard-config.ts";
import { generateWireguardKey, type Keyring } from "../../src/agent/wireguard-keys.ts";
import { sealSecret } from "../../src/devices/sealed.ts";
import { requirePeer } from "../helpers/peers.ts";

function newEncryptionKey(): KeyObject {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
}

function setup(now = Date.parse("2030-01-01T00:00:00Z")) {
  const dir = mkdtempSync(join(tmpdir(), "keyward-agent-install-"));
  const encryptionKey = newEncryptionKey();
  const keyring: Keyring = { format: 1, peers: {} };
  let saves = 0;
  const context: InstallContext = {
    state: emptyState(),
    keyring,
    encryptionKey,
    shell: "/bin/sh",
    now: () => now,
    saveState: async () => {
      saves += 1;
    },
  };
  return { dir, context, jwk: encryptionJwk(encryptionKey), saves: () => saves };
}

function secretEntry(dir: string, overrides: Partial<ArtifactConfig> = {}): ArtifactConfig {
  return {
    kind: "secret",
    id: "secret:radius",
    name: "radius",
    trailingNewline: false,
    path: join(dir, "radius.secret"),
    mode: 0o640,
    uid: undefined,
    gid: undefined,
    check: undefined,
    reload: undefined,
    commandTimeoutMs: 10_000,
    ...overrides,
  } as ArtifactConfig;
}

function wireguardEntry(dir: string, overrides: Partial<ArtifactConfig> = {}): ArtifactConfig {
  return {
    kind: "wireguard",
    id: "wireguard:wireguard:office:alpha",
    mount: "wireguard",
    network: "office",
    peer: "alpha",
    format: "wg",
    path: join(dir, "wg0.conf"),
    mode: 0o600,
    uid: undefined,
    gid: undefined,
    check: undefined,
    reload: undefined,
    commandTimeoutMs: 10_000,
    ...overrides,
  } as ArtifactConfig;
}

async function secretArtifact(
  jwk: ReturnType<typeof encryptionJwk>,
  version: number,
  value: string,
): Promise<Artifact> {
  const id = "secret:radius";
  return {
    id,
    kind: "secret",
    version,
    fields: { name: "radius", encoding: "base64" },
    secrets: { value: await sealSecret(jwk, { artifact: id, version, field: "value" }, value) },
    next: null,
  };
}

function renderedFor(peerPublicKey: string, version: number): string {
  return [
    `# Rendered by Keyward: network office, peer alpha, configuration version ${version}`,
    "[Interface]",
    `PrivateKey = ${PRIVATE_KEY_PLACEHOLDER}`,
    "ListenPort = 51820",
    "",
    "[Peer]",
    `PublicKey = ${peerPublicKey}`,
    "AllowedIPs = 10.0.0.2/32",
    "",
  ].join("\n");
}

async function wireguardContent(
  jwk: ReturnType<typeof encryptionJwk>,
  version: number,
  publicKey: string | null,
  peerPublicKey: string,
) {
  const id = "wireguard:wireguard:office:alpha";
  const text = renderedFor(peerPublicKey, version);
  return {
    version,
    fields: { mount: "wireguard", network: "office", peer: "alpha", public_key: publicKey },
    secrets: {
      wg: await sealSecret(jwk, { artifact: id, version, field: "wg" }, text),
      "wg-quick": await sealSecret(jwk, { artifact: id, version, field: "wg-quick" }, text),
    },
  };
}

describe("secret install", () => {
  it("writes value without newline", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir);
    const outcome = await installArtifact(context, entry, await secretArtifact(jwk, 1, "s3cr3t"));
    assert.deepEqual(outcome, { status: "installed", version: 1 });
    assert.equal(readFileSync(entry.path, "utf8"), "s3cr3t");
    assert.equal(statSync(entry.path).mode & 0o777, 0o640);
    assert.equal(context.state.installed[entry.path]?.version, 1);
    assert.equal(context.state.installed[entry.path]?.reload_pending, false);
  });

  it("trailing_newline adds one", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir, { trailingNewline: true } as Partial<ArtifactConfig>);
    await installArtifact(context, entry, await secretArtifact(jwk, 1, "s3cr3t"));
    assert.equal(readFileSync(entry.path, "utf8"), "s3cr3t\n");
  });

  it("opens plain jose JWE", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir);
    const jwe = await new CompactEncrypt(new TextEncoder().encode("from jose"))
      .setProtectedHeader({
        alg: "ECDH-ES",
        enc: "A256GCM",
        kw_artifact: "secret:radius",
        kw_version: 4,
        kw_field: "value",
      })
      .encrypt({ ...jwk });
    const artifact: Artifact = {
      id: "secret:radius",
      kind: "secret",
      version: 4,
      fields: {},
      secrets: { value: jwe },
      next: null,
    };
    assert.equal((await installArtifact(context, entry, artifact)).status, "installed");
    assert.equal(readFileSync(entry.path, "utf8"), "from jose");
  });

  it("same version is skipped", async () => {
    const { dir, context, jwk, saves } = setup();
    const entry = secretEntry(dir);
    const artifact = await secretArtifact(jwk, 1, "one");
    await installArtifact(context, entry, artifact);
    const before = saves();
    writeFileSync(entry.path, "edited by hand");
    assert.deepEqual(await installArtifact(context, entry, artifact), {
      status: "unchanged",
      version: 1,
    });
    assert.equal(readFileSync(entry.path, "utf8"), "edited by hand");
    assert.equal(saves(), before);
  });

  it("deleted file is reinstalled", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir);
    const artifact = await secretArtifact(jwk, 1, "one");
    await installArtifact(context, entry, artifact);
    unlinkSync(entry.path);
    assert.equal((await installArtifact(context, entry, artifact)).status, "installed");
    assert.equal(readFileSync(entry.path, "utf8"), "one");
  });

  it("value from another version rejected", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir);
    writeFileSync(entry.path, "old");
    const older = await secretArtifact(jwk, 1, "old value");
    const replayed: Artifact = { ...older, version: 2 };
    const outcome = await installArtifact(context, entry, replayed);
    assert.equal(outcome.status, "failed");
    assert.match(outcome.status === "failed" ? outcome.reason : "", /kw_version/);
    assert.equal(readFileSync(entry.path, "utf8"), "old");
  });

  it("value for another key rejected", async () => {
    const { dir, context } = setup();
    const entry = secretEntry(dir);
    const otherKey = encryptionJwk(newEncryptionKey());
    const outcome = await installArtifact(context, entry, await secretArtifact(otherKey, 1, "x"));
    assert.equal(outcome.status, "failed");
    assert.equal(existsSync(entry.path), false);
  });

  it("failed check keeps old file", async () => {
    const { dir, context, jwk } = setup();
    const marker = join(dir, "checked");
    const entry = secretEntry(dir, {
      check: `test "$(cat {path})" = good && touch ${marker}`,
    } as Partial<ArtifactConfig>);
    writeFileSync(entry.path, "old");
    const outcome = await installArtifact(context, entry, await secretArtifact(jwk, 2, "bad"));
    assert.equal(outcome.status, "failed");
    assert.match(
      outcome.status === "failed" ? outcome.reason : "",
      /check command exited with status 1/,
    );
    assert.equal(readFileSync(entry.path, "utf8"), "old");
    assert.deepEqual(readdirSync(dir).sort(), ["radius.secret"]);
    assert.equal(context.state.installed[entry.path], undefined);

    const accepted = await installArtifact(context, entry, await secretArtifact(jwk, 3, "good"));
    assert.equal(accepted.status, "installed");
    assert.equal(readFileSync(entry.path, "utf8"), "good");
    assert.ok(existsSync(marker));
  });

  it("check sees a path with spaces", async () => {
    const { dir, context, jwk } = setup();
    const spaced = join(dir, "with space");
    mkdirSync(spaced);
    const entry = secretEntry(dir, {
      path: join(spaced, "it's.secret"),
      check: "test -s {path}",
    } as Partial<ArtifactConfig>);
    assert.equal(
      (await installArtifact(context, entry, await secretArtifact(jwk, 1, "x"))).status,
      "installed",
    );
  });

  it("check timeout rejects", async () => {
    const { dir, context, jwk } = setup();
    const entry = secretEntry(dir, {
      check: "sleep 30; test -s {path}",
      commandTimeoutMs: 200,
    } as Partial<ArtifactConfig>);
    const outcome = await installArtifact(context, entry, await secretArtifact(jwk, 1, "x"));
    assert.equal(outcome.status, "failed");
    assert.match(outcome.status === "failed" ? outcome.reason : "", /timed out/);
    assert.equal(existsSync(entry.path), false);
  });

  it("failed reload retried next round", async () => {
    const { dir, context, jwk } = setup();
    const flag = join(dir, "reload-ok");
    const count = join(dir, "reloads");
    const entry = secretEntry(dir, {
      reload: `echo x >> ${count}; test -e ${flag}`,
    } as Partial<ArtifactConfig>);
    const artifact = await secretArtifact(jwk, 1, "value");
    const first = await installArtifact(context, entry, artifact);
    assert.equal(first.status, "reload_failed");
    assert.equal(first.status === "reload_failed" ? first.version : undefined, 1);
    assert.match(first.status === "reload_failed" ? first.reason : "", /reload command exited/);
    // The file is in place; only the reload is pending.
    assert.equal(readFileSync(entry.path, "utf8"), "value");
    assert.equal(context.state.installed[entry.path]?.reload_pending, true);

    writeFileSync(flag, "");
    assert.deepEqual(await installArtifact(context, entry, artifact), {
      status: "installed",
      version: 1,
    });
    assert.equal(context.state.installed[entry.path]?.reload_pending, false);
    assert.equal(readFileSync(count, "utf8"), "x\nx\n");
    assert.equal((await installArtifact(context, entry, artifact)).status, "unchanged");
    assert.equal(readFileSync(count, "utf8"), "x\nx\n");
  });
});

describe("wireguard install", () => {
  const peer = generateWireguardKey().public_key;

  it("inserts the active key", async () => {
    const { dir, context, jwk } = setup();
    const entry = wireguardEntry(dir);
    const current = generateWireguardKey();
    const staged = generateWireguardKey();
    context.keyring.peers[entry.id] = { current, staged };
    const artifact: Artifact = {
      id: entry.id,
      kind: "wireguard",
      ...(await wireguardContent(jwk, 5, current.public_key, peer)),
      next: null,
    };
    assert.equal((await installArtifact(context, entry, artifact)).status, "installed");
    const text = readFileSync(entry.path, "utf8");
    assert.ok(text.includes(`PrivateKey = ${current.private_key}\n`));
    assert.ok(!text.includes(staged.private_key));
    assert.equal(statSync(entry.path).mode & 0o777, 0o600);
  });

  it("wg-quick strip checks candidate", async (t) => {
    if (!requirePeer(t, "wg-quick")) return;
    const { dir, context, jwk } = setup();
    const entry = wireguardEntry(dir, {
      format: "wg-quick",
      check: "wg-quick strip {path} > /dev/null",
    } as Partial<ArtifactConfig>);
    const current = generateWireguardKey();
    context.keyring.peers[entry.id] = { current };
    const artifact: Artifact = {
      id: entry.id,
      kind: "wireguard",
      ...(await wireguardContent(jwk, 1, current.public_key, peer)),
      next: null,
    };
    const outcome = await installArtifact(context, entry, artifact);
    assert.deepEqual(outcome, { status: "installed", version: 1 });
  });

  it("waits for an unknown key", async () => {
    const { dir, context, jwk } = setup();
    const entry = wireguardEntry(dir);
    context.keyring.peers[entry.id] = { current: generateWireguardKey() };
    const foreign = generateWireguardKey().public_key;
    for (const publicKey of [null, foreign]) {
      const artifact: Artifact = {
        id: entry.id,
        kind: "wireguard",
        ...(await wireguardContent(jwk, 2, publicKey, peer)),
        next: null,
      };
      const outcome = await installArtifact(context, entry, artifact);
      assert.equal(outcome.status, "waiting");
      assert.equal(existsSync(entry.path), false);
    }
  });

  it("next installs after activation", async () => {
    const activation = Date.parse("2030-01-01T00:10:00Z");
    let now = activation - 1000;
    const { dir, context, jwk } = setup();
    context.now = () => now;
    const entry = wireguardEntry(dir);
    const current = generateWireguardKey();
    const staged = generateWireguardKey();
    context.keyring.peers[entry.id] = { current, staged };
    const artifact: Artifact = {
      id: entry.id,
      kind: "wireguard",
      ...(await wireguardContent(jwk, 7, current.public_key, peer)),
      next: {
        ...(await wireguardContent(jwk, 8, staged.public_key, peer)),
        activate_at: new Date(activation).toISOString(),
      },
    };
    assert.deepEqual(await installArtifact(context, entry, artifact), {
      status: "installed",
      version: 7,
    });
    assert.ok(readFileSync(entry.path, "utf8").includes(current.private_key));

    now = activation;
    assert.deepEqual(await installArtifact(context, entry, artifact), {
      status: "installed",
      version: 8,
    });
    const text = readFileSync(entry.path, "utf8");
    assert.ok(text.includes(`PrivateKey = ${staged.private_key}`));
    assert.ok(text.includes("configuration version 8"));
    assert.equal((await installArtifact(context, entry, artifact)).status, "unchanged");
  });

  it("format picks the secret", async () => {
    const { dir, context, jwk } = setup();
    const entry = wireguardEntry(dir, { format: "wg-quick" } as Partial<ArtifactConfig>);
    const current = generateWireguardKey();
    context.keyring.peers[entry.id] = { current };
    const content = await wireguardContent(jwk, 1, current.public_key, peer);
    delete (content.secrets as Record<string, string>)["wg-quick"];
    const artifact: Artifact = { id: entry.id, kind: "wireguard", ...content, next: null };
    const outcome = await installArtifact(context, entry, artifact);
    assert.equal(outcome.status, "failed");
    assert.match(outcome.status === "failed" ? outcome.reason : "", /no "wg-quick" secret/);
  });

  it("invalid rendered key rejected", async () => {
    const { dir, context, jwk } = setup();
    const entry = wireguardEntry(dir);
    const current = generateWireguardKey();
    context.keyring.peers[entry.id] = { current };
    writeFileSync(entry.path, "old");
    const artifact: Artifact = {
      id: entry.id,
      kind: "wireguard",
      ...(await wireguardContent(jwk, 1, current.public_key, `${peer.slice(0, 40)}`)),
      next: null,
    };
    const outcome = await installArtifact(context, entry, artifact);
    assert.equal(outcome.status, "failed");
    assert.match(outcome.status === "failed" ? outcome.reason : "", /line 7/);
    assert.equal(readFileSync(entry.path, "utf8"), "old");
  });
});
