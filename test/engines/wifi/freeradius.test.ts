import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import * as x509 from "../../../src/engines/pki/x509.ts";
import {
  type FreeradiusEapTlsOptions,
  opensslOnelineName,
  renderFreeradiusEapTls,
} from "../../../src/engines/wifi/freeradius.ts";
import { KeywardError } from "../../../src/errors.ts";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { createPkiApp, ok, run, tempFiles } from "../pki/fixtures.ts";
import {
  freeUdpPort,
  type RadiusServer,
  runEapolTest,
  type Station,
  startRadius,
  writeRadiusConfig,
} from "./freeradius-harness.ts";

/** Returns the PEM body of a raw GET response, failing unless 200. */
async function getText(t: TestApp, url: string): Promise<string> {
  const response = await t.request({ method: "GET", url, token: null });
  assert.equal(response.statusCode, 200, `GET ${url}: ${response.body}`);
  return response.body;
}

/** Mounts a PKI at `mount` with an EC root named `commonName` and a client-certificate role `clients`. */
async function mountPki(t: TestApp, mount: string, commonName: string): Promise<string> {
  const mounted = await t.request({
    method: "POST",
    url: `/v1/sys/mounts/${mount}`,
    payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
  });
  assert.equal(mounted.statusCode, 204, mounted.body);
  const root = await ok(t, "POST", `/v1/${mount}/root/generate/internal`, {
    common_name: commonName,
    organization: "Keyward Test",
    key_type: "ec",
    ttl: "87600h",
  });
  await ok(t, "POST", `/v1/${mount}/roles/clients`, {
    allow_any_name: true,
    enforce_hostnames: false,
    key_type: "ec",
    server_flag: false,
    client_flag: true,
    max_ttl: "720h",
  });
  return root.certificate;
}

const CA_CHAIN = `-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUSZ0u3v7X2gPz8m7o1l0QGx6C0zcwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJVGVzdCBSb290MB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAw
MDAwMFowFDESMBAGA1UEAwwJVGVzdCBSb290MFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAE
-----END CERTIFICATE-----`;

/** Returns a self-signed CA certificate in PEM with subject `name`. */
async function selfSignedCa(name: string): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return certificate.toString("pem");
}

describe("renderFreeradiusEapTls options", () => {
  let chain = "";
  let dollarChain = "";

  before(async () => {
    chain = await selfSignedCa("C=DE, O=Keyward Test, CN=Wi-Fi Root");
    dollarChain = await selfSignedCa("CN=Root $confdir");
  });

  const base = (): FreeradiusEapTlsOptions => ({
    caChain: chain,
    certificateFile: "/etc/freeradius/keyward/server.pem",
    privateKeyFile: "/etc/freeradius/keyward/server.key",
    caFile: "/etc/freeradius/keyward/ca.pem",
    caPath: "/etc/freeradius/keyward/ca.d",
  });

  it("renders EAP-TLS defaults", () => {
    const config = renderFreeradiusEapTls(base());
    assert.match(config, /^\tdefault_eap_type = tls$/m);
    assert.match(config, /^\t\tcertificate_file = "\/etc\/freeradius\/keyward\/server\.pem"$/m);
    assert.match(config, /^\t\tprivate_key_file = "\/etc\/freeradius\/keyward\/server\.key"$/m);
    assert.match(config, /^\t\tca_file = "\/etc\/freeradius\/keyward\/ca\.pem"$/m);
    assert.match(config, /^\t\tca_path = "\/etc\/freeradius\/keyward\/ca\.d"$/m);
    assert.match(config, /^\t\tcheck_crl = yes$/m);
    assert.match(config, /^\t\tcheck_cert_issuer = "\/C=DE\/O=Keyward Test\/CN=Wi-Fi Root"$/m);
    assert.match(config, /^\t\tcheck_cert_cn = "%\{User-Name\}"$/m);
    assert.match(config, /^\t\ttls_min_version = "1\.2"$/m);
    assert.match(config, /^\t\ttls_max_version = "1\.2"$/m);
    assert.match(config, /^\t\ttls = tls-keyward$/m);
    assert.doesNotMatch(config, /peap|ttls|md5|mschapv2/);
  });

  it("writes non-ASCII issuer bytes as hex", async () => {
    const certificate = new x509.X509Certificate(await selfSignedCa("CN=Zürich CA"));
    const name = opensslOnelineName(new Uint8Array(certificate.subjectName.toArrayBuffer()));
    assert.equal(name, "/CN=Z\\xC3\\xBCrich CA");
  });

  it("omits optional checks when disabled", () => {
    const config = renderFreeradiusEapTls({
      ...base(),
      caPath: undefined,
      checkCrl: false,
      checkCertIssuer: false,
      checkCertCn: false,
      tlsMaxVersion: "1.3",
      ecdhCurve: "prime256v1:secp384r1",
      caPathReloadIntervalSeconds: 3600,
    });
    assert.match(config, /^\t\tcheck_crl = no$/m);
    assert.doesNotMatch(config, /ca_path =/);
    assert.doesNotMatch(config, /check_cert_issuer/);
    assert.doesNotMatch(config, /check_cert_cn/);
    assert.match(config, /^\t\ttls_max_version = "1\.3"$/m);
    assert.match(config, /^\t\tecdh_curve = "prime256v1:secp384r1"$/m);
    assert.match(config, /^\t\tca_path_reload_interval = 3600$/m);
  });

  it("rejects bad options naming the field", () => {
    const cases: [Partial<FreeradiusEapTlsOptions>, string, string][] = [
      [{ certificateFile: "server.pem" }, "certificate_file", "invalid_field"],
      [{ privateKeyFile: '/etc/a"b' }, "private_key_file", "invalid_field"],
      [{ caFile: "/etc/$confdir/ca.pem" }, "ca_file", "invalid_field"],
      [{ caFile: "/etc/ca.pem\nx = y" }, "ca_file", "invalid_field"],
      [{ caFile: "" }, "ca_file", "missing_field"],
      [{ caPath: undefined }, "ca_path", "missing_field"],
      [{ checkCrl: false, checkAllCrl: true }, "check_all_crl", "invalid_field"],
      [{ tlsMinVersion: "1.1" as "1.2" }, "tls_min_version", "invalid_field"],
      [{ tlsMinVersion: "1.3" }, "tls_max_version", "invalid_field"],
      [{ cipherList: 'HIGH" ; x' }, "cipher_list", "invalid_field"],
      [{ ecdhCurve: "prime256v1 secp384r1" }, "ecdh_curve", "invalid_field"],
      [{ fragmentSize: 100 }, "fragment_size", "invalid_field"],
      [{ caPathReloadIntervalSeconds: 0 }, "ca_path_reload_interval", "invalid_field"],
      [{ caChain: "not a certificate" }, "ca_chain", "invalid_certificate"],
      [{ caChain: CA_CHAIN }, "ca_chain", "invalid_certificate"],
      [{ caChain: dollarChain }, "ca_chain", "invalid_certificate"],
    ];
    for (const [change, field, code] of cases) {
      assert.throws(
        () => renderFreeradiusEapTls({ ...base(), ...change }),
        (error: unknown) =>
          error instanceof KeywardError && error.field === field && error.code === code,
        `${JSON.stringify(change)} must fail on ${field} with ${code}`,
      );
    }
  });
});

// FreeRADIUS 3.2 with the rendered eap module, and eapol_test as the
// station, using certificates and CRLs from a Keyward PKI.
describe("EAP-TLS with FreeRADIUS and eapol_test", () => {
  let t: TestApp;
  const files = tempFiles();
  const radiusDir = join(files.dir, "raddb");
  const caPath = join(files.dir, "ca.d");
  let server: RadiusServer | undefined;
  let port = 0;
  let secret = "";
  let aliceSerial = "";
  let caChain = "";
  const stations: Record<string, Station> = {};
  let peersMissing = false;

  /** Writes the CA certificate and current CRL of both mounts into ca_path and rehashes it. */
  async function installCaPath() {
    rmSync(caPath, { recursive: true, force: true });
    mkdirSync(caPath);
    for (const mount of ["pki", "pki_other"]) {
      writeFileSync(join(caPath, `${mount}.pem`), await getText(t, `/v1/${mount}/ca/pem`));
      writeFileSync(join(caPath, `${mount}.crl.pem`), await getText(t, `/v1/${mount}/crl/pem`));
    }
    const rehash = run("openssl", ["rehash", caPath]);
    assert.equal(rehash.status, 0, rehash.output);
  }

  async function restartRadius() {
    await server?.stop();
    server = undefined;
    server = await startRadius(radiusDir);
  }

  /** Renders the eap module with `changes`, writes the configuration and restarts FreeRADIUS. */
  async function configureRadius(changes: Partial<FreeradiusEapTlsOptions>) {
    const eapModule = renderFreeradiusEapTls({
      caChain,
      certificateFile: join(files.dir, "server.pem"),
      privateKeyFile: join(files.dir, "server.key"),
      caFile: join(files.dir, "trusted.pem"),
      caPath,
      ...changes,
    });
    secret = writeRadiusConfig({ dir: radiusDir, port, eapModule });
    await restartRadius();
  }

  async function authenticate(name: string, overrides: Partial<Station> = {}) {
    const station = { ...stations[name]!, ...overrides };
    return runEapolTest(station, join(files.dir, `${name}.conf`), port, secret);
  }

  function skipUnlessPeers(c: TestContext): boolean {
    for (const program of ["freeradius", "eapol_test", "openssl"]) {
      if (!requirePeer(c, program)) return false;
    }
    return !peersMissing;
  }

  before(async () => {
    for (const program of ["freeradius", "eapol_test", "openssl"]) {
      if (run("sh", ["-c", `command -v ${program}`]).status !== 0) peersMissing = true;
    }
    if (peersMissing) return;

    t = await createPkiApp();
    const rootPem = (
      await ok(t, "POST", "/v1/pki/root/generate/internal", {
        // Non-ASCII and quotes in the name exercise check_cert_issuer's escaping.
        common_name: 'Keyward Wi-Fi Root "Zürich"',
        organization: "Keyward Test",
        key_type: "ec",
        ttl: "87600h",
      })
    ).certificate as string;
    await ok(t, "POST", "/v1/pki/roles/radius-server", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      server_flag: true,
      client_flag: false,
      max_ttl: "720h",
    });
    await ok(t, "POST", "/v1/pki/roles/wifi-clients", {
      allow_any_name: true,
      enforce_hostnames: false,
      key_type: "ec",
      server_flag: false,
      client_flag: true,
      max_ttl: "720h",
    });
    // A second CA that ca_file also trusts, so that only check_cert_issuer
    // stops its client certificates.
    const otherRootPem = await mountPki(t, "pki_other", "Other Wi-Fi Root");

    const radius = await ok(t, "POST", "/v1/pki/issue/radius-server", {
      common_name: "radius.example.test",
    });
    files.write("server.pem", radius.certificate);
    files.write("server.key", radius.private_key);
    files.write("ca.pem", rootPem);
    files.write("trusted.pem", `${rootPem}\n${otherRootPem}\n`);

    const issue = async (mount: string, role: string, name: string) => {
      const issued = await ok(t, "POST", `/v1/${mount}/issue/${role}`, { common_name: name });
      stations[name] = {
        identity: name,
        caCert: join(files.dir, "ca.pem"),
        clientCert: files.write(`${name}.pem`, issued.certificate),
        privateKey: files.write(`${name}.key`, issued.private_key),
        domainSuffixMatch: "radius.example.test",
      };
      return issued.serial_number as string;
    };
    aliceSerial = await issue("pki", "wifi-clients", "alice");
    await issue("pki", "wifi-clients", "bob");
    await issue("pki_other", "clients", "mallory");

    await installCaPath();
    caChain = await getText(t, "/v1/pki/ca/pem");
    port = await freeUdpPort();
    await configureRadius({});
  });

  after(async () => {
    await server?.stop();
    await t?.close();
    files.cleanup();
  });

  it("completes EAP-TLS for issued clients", async (c) => {
    if (!skipUnlessPeers(c)) return;
    for (const name of ["alice", "bob"]) {
      const result = await authenticate(name);
      assert.equal(result.status, 0, `${name}:\n${result.output}\n${server?.output()}`);
      assert.match(result.output, /^SUCCESS$/m);
    }
  });

  it("rejects a client of another CA", async (c) => {
    if (!skipUnlessPeers(c)) return;
    const start = server!.output().length;
    const result = await authenticate("mallory");
    const log = server!.output().slice(start);
    assert.notEqual(result.status, 0, result.output);
    assert.doesNotMatch(result.output, /^SUCCESS$/m);
    assert.match(log, /issuer .*does not match/i, log);

    // Without the issuer check the same certificate passes, because
    // ca_file trusts both roots.
    await configureRadius({ checkCertIssuer: false });
    const unchecked = await authenticate("mallory", {});
    await configureRadius({});
    assert.equal(unchecked.status, 0, unchecked.output);
    assert.match(unchecked.output, /^SUCCESS$/m);
  });

  it("rejects an identity unlike the CN", async (c) => {
    if (!skipUnlessPeers(c)) return;
    const result = await authenticate("bob", { identity: "alice" });
    assert.notEqual(result.status, 0, result.output);
    assert.doesNotMatch(result.output, /^SUCCESS$/m);
  });

  it("rejects a revoked client after CRL update", async (c) => {
    if (!skipUnlessPeers(c)) return;
    await ok(t, "POST", "/v1/pki/revoke", { serial_number: aliceSerial });
    await installCaPath();
    await restartRadius();

    const revoked = await authenticate("alice");
    const log = server!.output();
    assert.notEqual(revoked.status, 0, revoked.output);
    assert.doesNotMatch(revoked.output, /^SUCCESS$/m);
    assert.match(log, /certificate revoked/i, log);

    const other = await authenticate("bob");
    assert.equal(other.status, 0, `${other.output}\n${server?.output()}`);
    assert.match(other.output, /^SUCCESS$/m);
  });
});
