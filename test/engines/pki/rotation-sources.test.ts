import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, run, tempFiles } from "./fixtures.ts";

const ROTATE = "/v1/pki/issuers/rotate";

describe("PKI rotation sources", () => {
  let t: TestApp;
  const files = tempFiles();

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Sources Root",
      key_type: "ec",
      ttl: "8760h",
      issuer_name: "root",
    });
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.com",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "24h",
    });
  });

  after(async () => {
    await t.close();
    files.cleanup();
  });

  async function fails(url: string, payload: object | undefined, status: number, code?: string) {
    const response = await t.request({ method: "POST", url, ...(payload ? { payload } : {}) });
    assert.equal(response.statusCode, status, response.body);
    if (code) assert.equal(response.json().code, code, response.body);
    return response.json();
  }

  async function issuerCount(): Promise<number> {
    return (await ok(t, "GET", "/v1/pki/issuers?list=true")).keys.length;
  }

  /** Creates a self-signed EC CA with openssl and returns its certificate and key, PEM. */
  function externalCa(name: string): { certificate: string; key: string } {
    const keyPath = join(files.dir, `${name}.key`);
    const certificatePath = join(files.dir, `${name}.pem`);
    const result = run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certificatePath,
      "-days",
      "30",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert.equal(result.status, 0, result.output);
    return {
      certificate: readFileSync(certificatePath, "utf8"),
      key: readFileSync(keyPath, "utf8"),
    };
  }

  it("rotates an intermediate under its root", async (context) => {
    const csr = await ok(t, "POST", "/v1/pki/intermediate/generate/internal", {
      common_name: "Intermediate One",
      key_type: "ec",
    });
    const signed = await ok(t, "POST", "/v1/pki/root/sign-intermediate", {
      csr: csr.csr,
      common_name: "Intermediate One",
      ttl: "4380h",
    });
    const imported = await ok(t, "POST", "/v1/pki/intermediate/set-signed", {
      certificate: signed.certificate,
    });
    const firstIntermediate = imported.imported_issuers[0] as string;
    await ok(t, "POST", "/v1/pki/root/replace", { default: firstIntermediate });
    const before = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "a.example.com" });

    const prepared = await ok(t, "POST", `${ROTATE}/prepare`, {
      source: "intermediate",
      parent_issuer_ref: "root",
      common_name: "Intermediate Two",
      key_type: "ec",
      ttl: "4380h",
      issuer_name: "intermediate-two",
    });
    assert.equal(prepared.old_issuer_id, firstIntermediate);
    const next = await ok(t, "GET", "/v1/pki/issuer/intermediate-two");
    const root = await ok(t, "GET", "/v1/pki/issuer/root");
    assert.deepEqual(
      next.ca_chain.map((pem: string) => pem.trim()),
      [next.certificate.trim(), root.certificate.trim()],
    );

    await ok(t, "POST", `${ROTATE}/switch`);
    const after = await ok(t, "POST", "/v1/pki/issue/web", { common_name: "b.example.com" });
    assert.equal(after.issuing_ca.trim(), next.certificate.trim());
    await ok(t, "POST", `${ROTATE}/retire`);

    // Retiring the old intermediate leaves the root free to sign.
    const another = await ok(t, "POST", "/v1/pki/intermediate/generate/internal", {
      common_name: "Intermediate Three",
      key_type: "ec",
    });
    await ok(t, "POST", "/v1/pki/issuer/root/sign-intermediate", {
      csr: another.csr,
      common_name: "Intermediate Three",
      ttl: "720h",
    });

    if (!requirePeer(context, "openssl")) return;
    const response = await t.request({ method: "GET", url: "/v1/pki/ca_chain" });
    const bundle = files.write("intermediate-bundle.pem", response.body);
    for (const [name, issued] of [
      ["before", before],
      ["after", after],
    ] as const) {
      const leaf = files.write(`intermediate-${name}.pem`, issued.certificate);
      const result = run("openssl", ["verify", "-CAfile", bundle, leaf]);
      assert.equal(result.status, 0, `${name}: ${result.output}`);
    }
  });

  it("drops an imported issuer on rollback", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const count = await issuerCount();
    const external = externalCa("External Next");
    const prepared = await ok(t, "POST", `${ROTATE}/prepare`, {
      source: "import",
      pem_bundle: `${external.certificate}${external.key}`,
    });
    const next = await ok(t, "GET", `/v1/pki/issuer/${prepared.new_issuer_id}`);
    assert.equal(next.certificate.trim(), external.certificate.trim());
    assert.doesNotMatch(next.usage, /issuing-certificates/);

    await ok(t, "POST", `${ROTATE}/rollback`);
    assert.equal(await issuerCount(), count);
    const missing = await t.request({
      method: "GET",
      url: `/v1/pki/issuer/${prepared.new_issuer_id}`,
    });
    assert.equal(missing.statusCode, 404);
  });

  it("keeps an adopted issuer on rollback", async () => {
    const spare = await ok(t, "POST", "/v1/pki/root/rotate/internal", {
      common_name: "Spare Root",
      key_type: "ec",
      ttl: "720h",
      issuer_name: "spare",
    });
    const prepared = await ok(t, "POST", `${ROTATE}/prepare`, {
      source: "existing",
      issuer_ref: "spare",
    });
    assert.equal(prepared.new_issuer_id, spare.issuer_id);
    assert.doesNotMatch((await ok(t, "GET", "/v1/pki/issuer/spare")).usage, /issuing-certificates/);

    await ok(t, "POST", `${ROTATE}/rollback`);
    const kept = await ok(t, "GET", "/v1/pki/issuer/spare");
    assert.match(kept.usage, /issuing-certificates/);
  });

  const failures = [
    {
      name: "fail intermediate without parent",
      payload: { source: "intermediate", common_name: "x" },
      status: 400,
      code: "missing_field",
      field: "parent_issuer_ref",
    },
    {
      name: "fail import without bundle",
      payload: { source: "import" },
      status: 400,
      code: "missing_field",
      field: "pem_bundle",
    },
    {
      name: "fail existing without reference",
      payload: { source: "existing" },
      status: 400,
      code: "missing_field",
      field: "issuer_ref",
    },
    {
      name: "fail existing default issuer",
      payload: { source: "existing", issuer_ref: "intermediate-two" },
      status: 400,
      code: "invalid_request",
      field: "issuer_ref",
    },
    {
      name: "fail root without name",
      payload: { source: "root" },
      status: 400,
      code: "missing_field",
      field: "common_name",
    },
    {
      name: "fail taken issuer name",
      payload: { source: "root", common_name: "x", key_type: "ec", issuer_name: "root" },
      status: 409,
      code: "already_exists",
      field: "issuer_name",
    },
    {
      name: "fail unknown source",
      payload: { source: "cross-signed", common_name: "x" },
      status: 400,
      code: undefined,
      field: undefined,
    },
  ];
  for (const failure of failures) {
    it(failure.name, async () => {
      const count = await issuerCount();
      const body = await fails(`${ROTATE}/prepare`, failure.payload, failure.status, failure.code);
      if (failure.field) assert.equal(body.field, failure.field);
      assert.equal((await ok(t, "GET", ROTATE)).phase, "none");
      assert.equal(await issuerCount(), count);
    });
  }

  it("fail import without key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const count = await issuerCount();
    const external = externalCa("External Without Key");
    const body = await fails(
      `${ROTATE}/prepare`,
      { source: "import", pem_bundle: external.certificate },
      409,
      "invalid_state",
    );
    assert.match(body.errors[0], /no private key in Keyward/);
    assert.equal(await issuerCount(), count);
  });

  it("fail while default follows latest", async () => {
    await ok(t, "POST", "/v1/pki/config/issuers", { default_follows_latest_issuer: true });
    const body = await fails(
      `${ROTATE}/prepare`,
      { common_name: "Follower", key_type: "ec" },
      409,
      "invalid_state",
    );
    assert.match(body.errors[0], /default_follows_latest_issuer/);
    await ok(t, "POST", "/v1/pki/config/issuers", { default_follows_latest_issuer: false });
  });

  it("fail prepare without a CA", async () => {
    await t.request({ method: "POST", url: "/v1/sys/mounts/empty", payload: { type: "pki" } });
    await fails("/v1/empty/issuers/rotate/prepare", { common_name: "x" }, 404, "not_found");
    assert.equal((await ok(t, "GET", "/v1/empty/issuers/rotate")).phase, "none");
  });
});
