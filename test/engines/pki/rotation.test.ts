import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import { type ServerProcess, startDevServer } from "../../helpers/server-process.ts";
import { run, tempFiles } from "./fixtures.ts";

// biome-ignore lint/suspicious/noExplicitAny: response data of any shape; tests read fields directly.
type Data = Record<string, any>;

/** Keyward's HTTP API on a dev server, with the root token. */
class Client {
  constructor(readonly server: ServerProcess) {}

  async request(method: string, path: string, body?: object) {
    const response = await fetch(`${this.server.address}/v1/${path}`, {
      method,
      headers: {
        "x-vault-token": this.server.rootToken,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, text, json: text === "" ? {} : JSON.parse(text) };
  }

  /** Sends a request and returns `data` of a 2xx response, failing with the body otherwise. */
  async ok(method: string, path: string, body?: object): Promise<Data> {
    const response = await this.request(method, path, body);
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${response.text}`);
    return response.json.data ?? {};
  }

  /** Sends a request that must fail with `status` and `code`, and returns the error message. */
  async fails(
    method: string,
    path: string,
    body: object | undefined,
    expected: { status: number; code: string },
  ): Promise<string> {
    const response = await this.request(method, path, body);
    assert.equal(response.status, expected.status, `${method} ${path}: ${response.text}`);
    assert.equal(response.json.code, expected.code, response.text);
    return response.json.errors[0] as string;
  }

  async text(path: string): Promise<string> {
    const response = await fetch(`${this.server.address}/v1/${path}`);
    assert.equal(response.status, 200, `GET ${path}`);
    return response.text();
  }
}

const ROOT_NAME = "Keyward Rotation Root";

describe("phased PKI issuer rotation", () => {
  const files = tempFiles();
  let server: ServerProcess;
  let client: Client;
  let oldRoot: Data;
  /** Leaf certificates issued so far, PEM, by name. */
  const leaves = new Map<string, string>();

  before(async () => {
    server = await startDevServer();
    client = new Client(server);
    await client.ok("POST", "sys/mounts/pki", {
      type: "pki",
      config: { max_lease_ttl: "87600h" },
    });
    oldRoot = await client.ok("POST", "pki/root/generate/internal", {
      common_name: ROOT_NAME,
      key_type: "ec",
      ttl: "8760h",
      issuer_name: "old-root",
    });
    await client.ok("POST", "pki/roles/web", {
      allowed_domains: "example.com",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "24h",
    });
    await issue("before-rotation");
  });

  after(async () => {
    await server?.stop();
    files.cleanup();
  });

  async function issue(name: string, issuerRef?: string): Promise<Data> {
    const path = issuerRef ? `pki/issuer/${issuerRef}/issue/web` : "pki/issue/web";
    const issued = await client.ok("POST", path, { common_name: `${name}.example.com` });
    leaves.set(name, issued.certificate);
    return issued;
  }

  async function status(): Promise<Data> {
    return client.ok("GET", "pki/issuers/rotate");
  }

  /** Checks with `openssl verify` that every leaf issued so far verifies against the mount's trust bundle. */
  async function assertAllLeavesVerify(t: TestContext, phase: string): Promise<void> {
    if (!requirePeer(t, "openssl")) return;
    const bundle = files.write(`bundle-${phase}.pem`, await client.text("pki/ca_chain"));
    for (const [name, pem] of leaves) {
      const leaf = files.write(`${name}.pem`, pem);
      const result = run("openssl", ["verify", "-CAfile", bundle, leaf]);
      assert.equal(result.status, 0, `${phase}: ${name}: ${result.output}`);
      assert.match(result.output, /: OK$/m, `${phase}: ${name}`);
    }
  }

  it("starts in phase none", async () => {
    const current = await status();
    assert.equal(current.phase, "none");
    assert.equal(current.old_issuer_id, "");
    assert.equal(current.default_issuer_id, oldRoot.issuer_id);
  });

  const earlySteps = ["switch", "retire", "rollback"];
  for (const step of earlySteps) {
    it(`fail ${step} before prepare`, async () => {
      const message = await client.fails("POST", `pki/issuers/rotate/${step}`, undefined, {
        status: 409,
        code: "invalid_state",
      });
      assert.match(message, /phase "none"/);
    });
  }

  it("rolls back a prepared root", async (t) => {
    const prepared = await client.ok("POST", "pki/issuers/rotate/prepare", {
      common_name: ROOT_NAME,
      key_type: "ec",
      ttl: "8760h",
    });
    assert.equal(prepared.phase, "prepared");
    const dropped = await client.ok("GET", `pki/issuer/${prepared.new_issuer_id}`);
    assert.match(await client.text("pki/ca_chain"), new RegExp(firstLine(dropped.certificate)));

    const rolledBack = await client.ok("POST", "pki/issuers/rotate/rollback");
    assert.equal(rolledBack.phase, "none");
    assert.equal(rolledBack.default_issuer_id, oldRoot.issuer_id);
    await client.fails("GET", `pki/issuer/${prepared.new_issuer_id}`, undefined, {
      status: 404,
      code: "not_found",
    });
    assert.doesNotMatch(
      await client.text("pki/ca_chain"),
      new RegExp(firstLine(dropped.certificate)),
    );
    await assertAllLeavesVerify(t, "rolled-back-prepare");
  });

  let newRootId = "";

  it("publishes a prepared root unused", async (t) => {
    const prepared = await client.ok("POST", "pki/issuers/rotate/prepare", {
      source: "root",
      common_name: ROOT_NAME,
      key_type: "ec",
      ttl: "8760h",
      issuer_name: "new-root",
    });
    newRootId = prepared.new_issuer_id;
    assert.equal(prepared.phase, "prepared");
    assert.equal(prepared.old_issuer_id, oldRoot.issuer_id);
    assert.equal(prepared.default_issuer_id, oldRoot.issuer_id);
    assert.ok(prepared.prepared_at);

    const newRoot = await client.ok("GET", "pki/issuer/new-root");
    assert.doesNotMatch(newRoot.usage, /issuing-certificates/);
    const bundle = await client.text("pki/ca_chain");
    assert.ok(bundle.includes(newRoot.certificate.trim()), "ca_chain lists the new root");
    assert.ok(bundle.includes(oldRoot.certificate.trim()), "ca_chain lists the old root");

    const issued = await issue("prepared");
    assert.equal(issued.issuing_ca.trim(), oldRoot.certificate.trim());
    const message = await client.fails(
      "POST",
      "pki/issuer/new-root/issue/web",
      { common_name: "direct.example.com" },
      { status: 409, code: "invalid_state" },
    );
    assert.match(message, /may not issue certificates/);
    await assertAllLeavesVerify(t, "prepared");
  });

  const preparedSteps = [
    { step: "prepare", body: { common_name: "Another Root" } },
    { step: "retire", body: undefined },
  ];
  for (const { step, body } of preparedSteps) {
    it(`fail ${step} while prepared`, async () => {
      const message = await client.fails("POST", `pki/issuers/rotate/${step}`, body, {
        status: 409,
        code: "invalid_state",
      });
      assert.match(message, /phase "prepared"/);
    });
  }

  it("switches issuance to the new root", async (t) => {
    const switched = await client.ok("POST", "pki/issuers/rotate/switch");
    assert.equal(switched.phase, "switched");
    assert.equal(switched.default_issuer_id, newRootId);
    assert.ok(switched.switched_at);
    const newRoot = await client.ok("GET", `pki/issuer/${newRootId}`);
    assert.match(newRoot.usage, /issuing-certificates/);

    const issued = await issue("switched");
    assert.equal(issued.issuing_ca.trim(), newRoot.certificate.trim());
    const fromOld = await issue("switched-old-root", "old-root");
    assert.equal(fromOld.issuing_ca.trim(), oldRoot.certificate.trim());
    await assertAllLeavesVerify(t, "switched");

    // The bundle matters: the old root alone does not verify a certificate from the new one.
    if (!requirePeer(t, "openssl")) return;
    const oldOnly = files.write("old-root-only.pem", oldRoot.certificate);
    const leaf = files.write("switched-check.pem", issued.certificate);
    const result = run("openssl", ["verify", "-CAfile", oldOnly, leaf]);
    assert.notEqual(result.status, 0, result.output);
  });

  it("rolls back a switch", async (t) => {
    const rolledBack = await client.ok("POST", "pki/issuers/rotate/rollback");
    assert.equal(rolledBack.phase, "prepared");
    assert.equal(rolledBack.default_issuer_id, oldRoot.issuer_id);
    assert.equal(rolledBack.switched_at, null);
    const issued = await issue("rolled-back-switch");
    assert.equal(issued.issuing_ca.trim(), oldRoot.certificate.trim());
    await assertAllLeavesVerify(t, "rolled-back-switch");

    // The new root issued a certificate while it was the default, so it must stay published.
    const message = await client.fails("POST", "pki/issuers/rotate/rollback", undefined, {
      status: 409,
      code: "invalid_state",
    });
    assert.match(message, /dropping it would leave them unverifiable/);
    assert.equal((await client.ok("POST", "pki/issuers/rotate/switch")).phase, "switched");
  });

  it("keeps the phase across restart", async (t) => {
    await server.stop();
    server = await startDevServer({ dataDir: server.dataDir });
    client = new Client(server);
    const current = await status();
    assert.equal(current.phase, "switched");
    assert.equal(current.old_issuer_id, oldRoot.issuer_id);
    assert.equal(current.new_issuer_id, newRootId);
    assert.equal(current.default_issuer_id, newRootId);
    const issued = await issue("after-restart");
    assert.equal(
      issued.issuing_ca.trim(),
      (await client.ok("GET", "pki/issuer/new-root")).certificate.trim(),
    );
    await assertAllLeavesVerify(t, "restarted");
  });

  it("counts old certificates to re-issue", async () => {
    await client.ok("POST", "pki/roles/pinned", {
      allowed_domains: "example.com",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "24h",
      issuer_ref: "old-root",
    });
    const before = await status();
    // before-rotation, prepared, switched-old-root and rolled-back-switch.
    assert.equal(before.old_issuer_certificates, 4);
    // switched and after-restart.
    assert.equal(before.new_issuer_certificates, 2);
    assert.deepEqual(before.roles_using_old_issuer, ["pinned"]);

    const revoked = new (await import("node:crypto")).X509Certificate(
      leaves.get("switched-old-root") as string,
    );
    await client.ok("POST", "pki/revoke", { serial_number: revoked.serialNumber });
    assert.equal((await status()).old_issuer_certificates, 3);
  });

  it("retires the old root", async (t) => {
    const retired = await client.ok("POST", "pki/issuers/rotate/retire");
    assert.equal(retired.phase, "retired");
    assert.ok(retired.retired_at);
    const old = await client.ok("GET", "pki/issuer/old-root");
    assert.doesNotMatch(old.usage, /issuing-certificates/);
    assert.match(old.usage, /crl-signing/);

    for (const path of ["pki/issuer/old-root/issue/web", "pki/issue/pinned"]) {
      const message = await client.fails(
        "POST",
        path,
        { common_name: "late.example.com" },
        { status: 409, code: "invalid_state" },
      );
      assert.match(message, /may not issue certificates/, path);
    }
    assert.ok((await client.text("pki/ca_chain")).includes(oldRoot.certificate.trim()));
    leaves.delete("switched-old-root");
    await issue("retired");
    await assertAllLeavesVerify(t, "retired");
  });

  it("fail rollback after retire", async () => {
    const message = await client.fails("POST", "pki/issuers/rotate/rollback", undefined, {
      status: 409,
      code: "invalid_state",
    });
    assert.match(message, /phase "retired"/);
  });

  it("keeps signing the old CRL", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const bundle = files.write("bundle-crl.pem", await client.text("pki/ca_chain"));
    const leaf = new (await import("node:crypto")).X509Certificate(
      leaves.get("before-rotation") as string,
    );
    await client.ok("POST", "pki/revoke", { serial_number: leaf.serialNumber });
    const crl = files.write("old-root.crl.pem", await client.text("pki/issuer/old-root/crl/pem"));
    const leafPath = files.write("before-rotation.pem", leaf.toString());
    const result = run("openssl", [
      "verify",
      "-crl_check",
      "-CAfile",
      bundle,
      "-CRLfile",
      crl,
      leafPath,
    ]);
    assert.notEqual(result.status, 0, result.output);
    assert.match(result.output, /certificate revoked/);

    const kept = files.write("prepared.pem", leaves.get("prepared") as string);
    const good = run("openssl", ["verify", "-crl_check", "-CAfile", bundle, "-CRLfile", crl, kept]);
    assert.equal(good.status, 0, good.output);
  });

  it("answers OCSP for the old root", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const bundle = files.write("bundle-ocsp.pem", await client.text("pki/ca_chain"));
    const issuer = files.write("old-root.pem", oldRoot.certificate);
    const leaf = files.write("prepared.pem", leaves.get("prepared") as string);
    const result = run("openssl", [
      "ocsp",
      "-issuer",
      issuer,
      "-cert",
      leaf,
      "-url",
      `${server.address}/v1/pki/ocsp`,
      "-CAfile",
      bundle,
    ]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Response verify OK/);
    assert.match(result.output, /prepared\.pem: good/);
  });

  it("prepares again after retire", async () => {
    const prepared = await client.ok("POST", "pki/issuers/rotate/prepare", {
      common_name: "Third Root",
      key_type: "ec",
      ttl: "720h",
    });
    assert.equal(prepared.phase, "prepared");
    assert.equal(prepared.old_issuer_id, newRootId);
    assert.equal((await client.ok("POST", "pki/issuers/rotate/rollback")).phase, "none");
  });
});

/** Returns the first base64 line of a PEM certificate, a fragment unique to it. */
function firstLine(pem: string): string {
  return (pem.split("\n")[1] as string).replace(/[+/]/g, "\\$&");
}
