import assert from "node:assert/strict";
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  webcrypto,
  X509Certificate,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { generateKeys } from "../../../src/crypto/key-generation.ts";
import { buildCertificate, newSerialHex } from "../../../src/engines/pki/certificate.ts";
import { checkCsr } from "../../../src/engines/pki/csr.ts";
import { keyObjectSigner } from "../../../src/engines/pki/data-signer.ts";
import { oid, time } from "../../../src/engines/pki/der-writer.ts";
import { formatIpAddress, ipAddressBytes } from "../../../src/engines/pki/general-names.ts";
import type { KeySpec } from "../../../src/engines/pki/key-pairs.ts";
import { encodeName, formatName } from "../../../src/engines/pki/subject.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { keywardError } from "../../seal/fixtures.ts";
import { run, tempFiles } from "./fixtures.ts";

type WebAlgorithm =
  | webcrypto.RsaHashedKeyGenParams
  | webcrypto.EcKeyGenParams
  | webcrypto.Algorithm;

/** Makes a PEM CSR with WebCrypto for `name`, with a DNS and an IP SAN. */
async function makeCsr(algorithm: WebAlgorithm, name: string): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(algorithm as webcrypto.Algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: name },
        { type: "ip", value: "2001:db8::7" },
      ]),
    ],
  });
  return csr.toString("pem");
}

function selfSignedCa(spec: KeySpec) {
  const pair =
    spec.type === "ec"
      ? generateKeys({ type: "ec", namedCurve: spec.bits === 384 ? "secp384r1" : "prime256v1" })
      : spec.type === "rsa"
        ? generateKeys({ type: "rsa", modulusLength: spec.bits })
        : generateKeys({ type: "ed25519" });
  return {
    pair,
    spki: pair.publicKey.export({ format: "der", type: "spki" }),
    signer: keyObjectSigner(pair.privateKey, spec),
  };
}

const BASE_TEMPLATE = {
  keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
  extKeyUsageOids: [],
  policyOids: [],
  issuingCertificateUrls: ["http://127.0.0.1/ca"],
  ocspServers: ["http://127.0.0.1/ocsp"],
  crlDistributionPoints: ["http://127.0.0.1/crl"],
};

describe("PKI certificate encoding", () => {
  it("encodes times by year", () => {
    assert.equal(time(new Date("2049-12-31T23:59:59Z"))[0], 0x17);
    assert.equal(time(new Date("2049-12-31T23:59:59Z")).subarray(2).toString(), "491231235959Z");
    assert.equal(time(new Date("2050-01-01T00:00:00Z"))[0], 0x18);
    assert.equal(time(new Date("2050-01-01T00:00:00Z")).subarray(2).toString(), "20500101000000Z");
  });

  it("encodes OIDs with large arcs", () => {
    assert.equal(oid("1.2.840.113549.1.1.11").toString("hex"), "06092a864886f70d01010b");
    assert.equal(oid("2.5.29.17").toString("hex"), "0603551d11");
  });

  for (const [name, text, hex] of [
    ["ok IPv4", "192.0.2.1", "c0000201"],
    ["ok IPv6 compressed", "2001:db8::1", "20010db8000000000000000000000001"],
    ["ok IPv6 embedded IPv4", "::ffff:192.0.2.1", "00000000000000000000ffffc0000201"],
    ["ok IPv6 unspecified", "::", "00000000000000000000000000000000"],
  ] as const) {
    it(`reads and formats IP addresses: ${name}`, () => {
      const bytes = ipAddressBytes(text);
      assert.equal(bytes.toString("hex"), hex);
      assert.equal(formatIpAddress(bytes), text);
    });
  }

  it("encodes names as @peculiar/x509 does", () => {
    const name: x509.JsonName = [{ C: ["DE"] }, { O: ["Bücher & Co"] }, { CN: ["web.example"] }];
    const ours = encodeName(name);
    const theirs = Buffer.from(new x509.Name(name).toArrayBuffer());
    assert.equal(ours.toString("hex"), theirs.toString("hex"));
    assert.equal(formatName(name), new x509.Name(name).toString());
  });

  for (const spec of [
    { type: "ec", bits: 256 },
    { type: "ec", bits: 384 },
    { type: "rsa", bits: 2048 },
    { type: "ed25519", bits: 0 },
  ] as const) {
    it(`signs a CA that verifies: ${spec.type} ${spec.bits}`, async () => {
      const ca = selfSignedCa(spec);
      const der = await buildCertificate(
        {
          ...BASE_TEMPLATE,
          subject: [{ CN: ["Encoder Root"] }],
          publicKey: ca.spki,
          serialHex: newSerialHex(),
          notBefore: new Date("2026-01-01T00:00:00Z"),
          notAfter: new Date("2060-01-01T00:00:00Z"),
          ca: { maxPathLength: 1, permittedDnsDomains: ["example.test"] },
          altNames: [{ type: "ip", value: "10.0.0.1" }],
        },
        { selfSigner: ca.signer, keySpec: spec },
      );
      const certificate = new X509Certificate(der);
      assert.equal(certificate.verify(ca.pair.publicKey), true);
      assert.equal(certificate.ca, true);
      assert.equal(certificate.subjectAltName, "IP Address:10.0.0.1");
      assert.equal(certificate.validTo, "Jan  1 00:00:00 2060 GMT");

      const parsed = new x509.X509Certificate(der);
      const keyId = createHash("sha1").update(subjectPublicKeyOf(ca.pair.publicKey)).digest("hex");
      assert.equal(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId, keyId);
      assert.equal(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, keyId);
      assert.equal(parsed.getExtension(x509.BasicConstraintsExtension)?.pathLength, 1);
      assert.equal(
        parsed.getExtension(x509.KeyUsagesExtension)?.usages,
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      );
      const access = parsed.getExtension(x509.AuthorityInfoAccessExtension);
      assert.equal(access?.ocsp[0]?.value, "http://127.0.0.1/ocsp");
      assert.equal(access?.caIssuers[0]?.value, "http://127.0.0.1/ca");
    });
  }

  it("marks SAN critical for empty subjects", async () => {
    const spec = { type: "ec", bits: 256 } as const;
    const ca = selfSignedCa(spec);
    const der = await buildCertificate(
      {
        ...BASE_TEMPLATE,
        subject: [],
        publicKey: ca.spki,
        serialHex: newSerialHex(),
        notBefore: new Date("2026-01-01T00:00:00Z"),
        notAfter: new Date("2027-01-01T00:00:00Z"),
        altNames: [{ type: "dns", value: "only-san.example.test" }],
      },
      { selfSigner: ca.signer, keySpec: spec },
    );
    const parsed = new x509.X509Certificate(der);
    assert.equal(parsed.subject, "");
    assert.equal(parsed.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true);
  });
});

/** Returns the subjectPublicKey bits of a key, from node:crypto's own exports: the input of the key identifier. */
function subjectPublicKeyOf(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === "rsa") return key.export({ format: "der", type: "pkcs1" });
  const jwk = key.export({ format: "jwk" });
  const x = Buffer.from(jwk.x!, "base64url");
  if (key.asymmetricKeyType === "ed25519") return x;
  return Buffer.concat([Buffer.from([4]), x, Buffer.from(jwk.y!, "base64url")]);
}

describe("PKI CSR checks", () => {
  for (const [name, algorithm] of [
    ["ok ECDSA P-256", { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" }],
    ["ok ECDSA P-384", { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" }],
    [
      "ok RSA 2048",
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
    ],
    ["ok Ed25519", { name: "Ed25519" }],
  ] as const) {
    it(`reads names and keys: ${name}`, async () => {
      const checked = await checkCsr(await makeCsr(algorithm, "csr.example.test"));
      assert.equal(checked.commonName, "csr.example.test");
      assert.deepEqual(checked.altNames, [
        { type: "dns", value: "csr.example.test" },
        { type: "ip", value: "2001:db8::7" },
      ]);
      assert.equal(checked.csr.subject, "CN=csr.example.test");
    });
  }

  it("rejects a CSR signed by another key", async () => {
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
    const der = Buffer.from(
      (await makeCsr(algorithm, "a.example.test")).replace(/-----[A-Z ]+-----|\s+/g, ""),
      "base64",
    );
    // Put another P-256 key, of the same encoded length, in place of the signer's.
    const ownKey = Buffer.from(new x509.Pkcs10CertificateRequest(der).publicKey.rawData);
    const otherKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({
      format: "der",
      type: "spki",
    });
    const offset = der.indexOf(ownKey);
    assert.equal(otherKey.length, ownKey.length);
    otherKey.copy(der, offset);
    await assert.rejects(
      checkCsr(der.toString("base64")),
      keywardError("invalid_csr_signature", "csr"),
    );
  });

  for (const [name, digest, saltLength, accepted] of [
    ["ok RSA-PSS SHA-256", "-sha256", "32", true],
    ["ok RSA-PSS SHA-384 digest-length salt", "-sha384", "digest", true],
    ["fail RSA-PSS SHA-1", "-sha1", "20", false],
  ] as const) {
    it(`checks RSA-PSS CSRs from openssl: ${name}`, async (c) => {
      if (!requirePeer(c, "openssl")) return;
      const files = tempFiles();
      try {
        const out = `${files.dir}/pss.csr`;
        const generated = run("openssl", [
          "req",
          "-new",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          `${files.dir}/pss.key`,
          "-subj",
          "/CN=pss.example.test",
          digest,
          "-sigopt",
          "rsa_padding_mode:pss",
          "-sigopt",
          `rsa_pss_saltlen:${saltLength}`,
          "-out",
          out,
        ]);
        assert.equal(generated.status, 0, generated.output);
        const csr = readFileSync(out, "utf8");
        if (accepted) {
          assert.equal((await checkCsr(csr)).commonName, "pss.example.test");
        } else {
          await assert.rejects(checkCsr(csr), keywardError("unsupported_key_type", "csr"));
        }
      } finally {
        files.cleanup();
      }
    });
  }

  it("rejects a SHA-1 signed CSR", async () => {
    const csr = await makeCsr(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-1",
      },
      "sha1.example.test",
    );
    await assert.rejects(checkCsr(csr), keywardError("unsupported_key_type", "csr"));
  });

  it("rejects truncated DER", async () => {
    const csr = await makeCsr({ name: "Ed25519" }, "cut.example.test");
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s+/g, ""), "base64");
    await assert.rejects(
      checkCsr(der.subarray(0, der.length - 10).toString("base64")),
      keywardError("invalid_certificate", "csr"),
    );
  });
});
