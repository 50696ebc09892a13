import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
import {
  bitString,
  buildCsr,
  csrPem,
  OIDS,
  oid,
  sequence,
  spkiOf,
  validEcCsr,
} from "./csr-builder.ts";

// Hostile CSRs sent to a real `keyward server --dev` process, so that a
// CSR that crashes the process fails the test instead of the test runner.

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape.
  body: any;
}

async function call(server: ServerProcess, method: string, path: string, body?: object) {
  const response = await fetch(`${server.address}${path}`, {
    method,
    headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined } as Reply;
}

/** Builds a P-256 CSR whose public key is the point at infinity (a single zero byte). */
function infinityPointCsr(): Buffer {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return buildCsr({
    spki: sequence(sequence(oid(OIDS.ecPublicKey), oid(OIDS.p256)), bitString(Buffer.from([0]))),
    signatureAlgorithm: sequence(oid(OIDS.ecdsaSha256)),
    sign: (info) => sign("sha256", info, privateKey),
  });
}

describe("CSR checks in a server process", () => {
  let server: ServerProcess;

  before(async () => {
    server = await startDevServer({ timeoutMs: 60_000 });
    const mounted = await call(server, "POST", "/v1/sys/mounts/pki", {
      type: "pki",
      config: { max_lease_ttl: "87600h" },
    });
    assert.equal(mounted.status, 204, JSON.stringify(mounted.body));
    const root = await call(server, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Break Root",
      key_type: "ec",
      ttl: "8760h",
    });
    assert.equal(root.status, 200, JSON.stringify(root.body));
    const role = await call(server, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "any",
      max_ttl: "72h",
    });
    assert.equal(role.status, 200, JSON.stringify(role.body));
  });

  after(async () => {
    await server?.stop("SIGKILL");
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  it("many concurrent checks answer", async () => {
    const valid = validEcCsr("many.example.test");
    const tampered = Buffer.from(valid);
    tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x01;
    const sent = Array.from({ length: 300 }, (_, index) =>
      call(server, "POST", "/v1/pki/sign/web", {
        csr: csrPem(index % 2 === 0 ? valid : tampered),
        common_name: "many.example.test",
      }),
    );
    const replies = await Promise.all(sent);
    replies.forEach((reply, index) => {
      if (index % 2 === 0) assert.equal(reply.status, 200, JSON.stringify(reply.body));
      else assert.equal(reply.status, 400, JSON.stringify(reply.body));
    });
  });

  it("point at infinity gets 400", async () => {
    const reply = await call(server, "POST", "/v1/pki/sign/web", {
      csr: csrPem(infinityPointCsr()),
      common_name: "zero.example.test",
    }).catch((error: unknown) => ({ status: 0, body: String(error) }));
    assert.equal(
      reply.status,
      400,
      `${JSON.stringify(reply.body)}\n${server.output().slice(-1500)}`,
    );
    assert.equal(reply.body?.errors?.[0]?.code ?? reply.body?.code, "unsupported_key_type");
  });

  it("server still answers afterwards", async () => {
    const reply = await call(server, "POST", "/v1/pki/sign/web", {
      csr: csrPem(validEcCsr("after.example.test")),
      common_name: "after.example.test",
    }).catch((error: unknown) => ({ status: 0, body: String(error) }));
    assert.equal(
      reply.status,
      200,
      `${JSON.stringify(reply.body)}\n${server.output().slice(-1500)}`,
    );
  });
});

describe("SIGTERM during CSR checks", () => {
  it("exits 0 with requests in flight", async () => {
    const server = await startDevServer({ timeoutMs: 60_000 });
    try {
      await call(server, "POST", "/v1/sys/mounts/pki", { type: "pki" });
      await call(server, "POST", "/v1/pki/root/generate/internal", {
        common_name: "Stop Root",
        key_type: "ec",
      });
      await call(server, "POST", "/v1/pki/roles/web", {
        allowed_domains: "example.test",
        allow_subdomains: true,
        key_type: "any",
      });
      const rsa = generateKeyPairSync("rsa", { modulusLength: 4096 });
      const csr = csrPem(
        buildCsr({
          spki: spkiOf(rsa.publicKey),
          commonName: "stop.example.test",
          signatureAlgorithm: sequence(oid("1.2.840.113549.1.1.11"), Buffer.from([5, 0])),
          sign: (info) => sign("sha256", info, rsa.privateKey),
        }),
      );
      const inFlight = Array.from({ length: 100 }, () =>
        call(server, "POST", "/v1/pki/sign/web", { csr, common_name: "stop.example.test" }).catch(
          () => undefined,
        ),
      );
      // Stop once the first reply shows the checks are running.
      await Promise.race(inFlight);
      const code = await server.stop("SIGTERM");
      await Promise.all(inFlight);
      assert.equal(code, 0, server.output());
    } finally {
      await server.stop("SIGKILL");
      rmSync(server.dataDir, { recursive: true, force: true });
    }
  });
});
