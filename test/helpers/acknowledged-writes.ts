import assert from "node:assert/strict";
import type { ServerProcess } from "./server-process.ts";

/**
 * Writes that a Keyward server acknowledged before it was killed, for the
 * durability tests: each must still be present after a restart.
 */
export interface Acknowledged {
  keys: Set<string>;
  ciphertexts: { key: string; ciphertext: string; plaintext: string }[];
  /** Highest version of each key whose rotation was acknowledged. */
  versions: Map<string, number>;
}

export function newAcknowledged(): Acknowledged {
  return { keys: new Set(), ciphertexts: [], versions: new Map() };
}

async function call(server: ServerProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

/**
 * Creates, encrypts with, rotates and encrypts with transit keys until the
 * server dies, recording only what it acknowledged. Key names start with
 * `r{round}-w{writer}-`.
 */
export async function writeUntilKilled(
  server: ServerProcess,
  round: number,
  writer: number,
  acknowledged: Acknowledged,
) {
  for (let i = 0; ; i++) {
    try {
      const key = `r${round}-w${writer}-k${i}`;
      const created = await call(server, "POST", `transit/keys/${key}`, { type: "aes256-gcm96" });
      if (created.status >= 300) throw new Error(`create failed: ${created.status}`);
      acknowledged.keys.add(key);

      const plaintext = Buffer.from(`${key} secret`).toString("base64");
      const encrypted = await call(server, "POST", `transit/encrypt/${key}`, { plaintext });
      if (encrypted.status !== 200) throw new Error(`encrypt failed: ${encrypted.status}`);
      acknowledged.ciphertexts.push({ key, ciphertext: encrypted.body.data.ciphertext, plaintext });

      const rotated = await call(server, "POST", `transit/keys/${key}/rotate`);
      if (rotated.status >= 300) throw new Error(`rotate failed: ${rotated.status}`);
      acknowledged.versions.set(key, 2);

      const again = await call(server, "POST", `transit/encrypt/${key}`, { plaintext });
      if (again.status !== 200) throw new Error(`encrypt failed: ${again.status}`);
      acknowledged.ciphertexts.push({ key, ciphertext: again.body.data.ciphertext, plaintext });
    } catch (error) {
      // The server was killed mid-request: that request was never acknowledged.
      if (server.child.exitCode !== null || server.child.signalCode !== null) return;
      if ((error as Error).message.includes("fetch failed")) return;
      throw error;
    }
  }
}

/** Checks that every acknowledged key, rotation and ciphertext is present and decrypts. */
export async function verifyAcknowledged(server: ServerProcess, acknowledged: Acknowledged) {
  for (const key of acknowledged.keys) {
    const read = await call(server, "GET", `transit/keys/${key}`);
    assert.equal(read.status, 200, `acknowledged key ${key} is missing`);
    const version = acknowledged.versions.get(key) ?? 1;
    assert.ok(read.body.data.latest_version >= version, `key ${key} lost an acknowledged rotation`);
  }
  for (const { key, ciphertext, plaintext } of acknowledged.ciphertexts) {
    const decrypted = await call(server, "POST", `transit/decrypt/${key}`, { ciphertext });
    assert.equal(decrypted.status, 200, `ciphertext of ${key} no longer decrypts`);
    assert.equal(decrypted.body.data.plaintext, plaintext);
  }
}
