import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { constants, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { describe, it } from "node:test";
import {
  VerifyError,
  VerifyPool,
  type VerifyRequest,
  verifyHere,
} from "../../src/crypto/verify-pool.ts";
import {
  CaseTally,
  hex,
  loadVectors,
  type WycheproofGroup,
  type WycheproofTest,
} from "./wycheproof-vectors.ts";

interface SignatureTest extends WycheproofTest {
  msg: string;
  sig: string;
}

interface EcdsaGroup extends WycheproofGroup<SignatureTest> {
  publicKeyPem: string;
}

/** A hang limit for the child process that must exit on its own; it only detects a hang. */
const EXIT_LIMIT_MS = 60_000;

const message = Buffer.from("a certificate signing request's CertificationRequestInfo");

function ecRequest(): VerifyRequest {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    algorithm: "sha256",
    data: message,
    signature: sign("sha256", message, { key: privateKey, dsaEncoding: "der" }),
    key: publicKey.export({ format: "jwk" }),
    options: { dsaEncoding: "der" },
  };
}

function tampered(request: VerifyRequest): VerifyRequest {
  const data = Buffer.from(request.data);
  data[0]! ^= 1;
  return { ...request, data };
}

describe("VerifyPool", () => {
  it("P-256 JWK key, changed message", async () => {
    const pool = new VerifyPool();
    try {
      const request = ecRequest();
      assert.equal(await pool.verify(request), true);
      assert.equal(await pool.verify(tampered(request)), false);
    } finally {
      await pool.close();
    }
  });

  it("Ed25519 JWK and RSA-PSS key object", async () => {
    const pool = new VerifyPool();
    try {
      const ed = generateKeyPairSync("ed25519");
      const edRequest: VerifyRequest = {
        algorithm: null,
        data: message,
        signature: sign(null, message, ed.privateKey),
        key: ed.publicKey.export({ format: "jwk" }),
      };
      assert.equal(await pool.verify(edRequest), true);
      assert.equal(await pool.verify(tampered(edRequest)), false);

      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const options = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      const rsaRequest: VerifyRequest = {
        algorithm: "sha256",
        data: message,
        signature: sign("sha256", message, { key: rsa.privateKey, ...options }),
        key: rsa.publicKey,
        options,
      };
      assert.equal(await pool.verify(rsaRequest), true);
      assert.equal(await pool.verify(tampered(rsaRequest)), false);
    } finally {
      await pool.close();
    }
  });

  it("fail point off the curve", async () => {
    const pool = new VerifyPool();
    try {
      const request = ecRequest();
      const jwk = request.key as { x: string; y: string };
      const offCurve = { ...jwk, y: jwk.x };
      await assert.rejects(pool.verify({ ...request, key: offCurve }), VerifyError);
    } finally {
      await pool.close();
    }
  });

  it("view of a larger buffer", async () => {
    const pool = new VerifyPool();
    try {
      const request = ecRequest();
      const slab = Buffer.alloc(64 * 1024);
      const data = slab.subarray(100, 100 + message.length);
      message.copy(data);
      assert.equal(await pool.verify({ ...request, data }), true);
    } finally {
      await pool.close();
    }
  });

  it("close with checks pending", async () => {
    const pool = new VerifyPool();
    const request = ecRequest();
    const pending = Array.from({ length: 50 }, (_, index) =>
      pool.verify(index % 2 === 0 ? request : tampered(request)),
    );
    // The pending checks finish on this thread, and the next check starts a new worker.
    await pool.close();
    const results = await Promise.all(pending);
    assert.deepEqual(
      results,
      results.map((_, index) => index % 2 === 0),
    );
    try {
      assert.equal(await pool.verify(request), true);
    } finally {
      await pool.close();
    }
  });

  it("process exits after checks", async () => {
    const request = ecRequest();
    const encoded = {
      ...request,
      data: Buffer.from(request.data).toString("base64"),
      signature: Buffer.from(request.signature).toString("base64"),
    };
    const source = `
      const { verifyPool } = await import(${JSON.stringify(new URL("../../src/crypto/verify-pool.ts", import.meta.url).href)});
      const request = ${JSON.stringify(encoded)};
      const valid = await verifyPool.verify({ ...request, data: Buffer.from(request.data, "base64"), signature: Buffer.from(request.signature, "base64") });
      console.log(valid);
    `;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", source],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    const limit = setTimeout(() => child.kill("SIGKILL"), EXIT_LIMIT_MS);
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    clearTimeout(limit);
    assert.equal(code, 0);
    assert.equal(output.trim(), "true");
  });

  it("Wycheproof P-256 cases agree", async () => {
    const vectors = loadVectors<EcdsaGroup>("ecdsa_secp256r1_sha256_test.json");
    const pool = new VerifyPool();
    const tally = new CaseTally();
    try {
      for (const group of vectors.testGroups) {
        const key = createPublicKey(group.publicKeyPem).export({ format: "jwk" });
        const checks = group.tests.map(async (test) => {
          const request: VerifyRequest = {
            algorithm: "sha256",
            data: hex(test.msg),
            signature: hex(test.sig),
            key,
            options: { dsaEncoding: "der" },
          };
          const viaPool = await pool.verify(request).catch(() => false);
          let onThisThread = false;
          try {
            onThisThread = verifyHere(request);
          } catch {
            onThisThread = false;
          }
          tally.record(test, viaPool);
          if (viaPool !== onThisThread) {
            tally.fail(test, `worker returned ${viaPool}, this thread ${onThisThread}`);
          }
        });
        await Promise.all(checks);
      }
    } finally {
      await pool.close();
    }
    assert.equal(tally.total, vectors.numberOfTests);
    assert.deepEqual(tally.failures, []);
  });
});
