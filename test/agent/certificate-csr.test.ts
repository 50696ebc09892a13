import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateCertificateKey, makeCertificateCsr } from "../../src/agent/certificate-keys.ts";
import { canonicalAltName, checkServiceCsr } from "../../src/devices/certificate-names.ts";
import { checkCsr } from "../../src/engines/pki/csr.ts";

describe("agent CSR IP addresses", () => {
  const key = generateCertificateKey("ec-p256");

  for (const ip of ["10.0.0.1", "::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:192.168.1.2"]) {
    it(`encodes ${ip}`, async () => {
      const canonical = canonicalAltName(ip) as string;
      const csr = await makeCertificateCsr(key, "ec-p256", {
        commonName: "gw.example.net",
        altNames: [canonical],
      });
      // The server decodes 4 bytes as IPv4 and 16 bytes as IPv6 text.
      const parsed = await checkCsr(csr, "csr");
      assert.deepEqual(parsed.altNames, [{ type: "ip", value: canonical }]);
      await checkServiceCsr(csr, { commonName: "gw.example.net", altNames: [canonical] });
    });
  }
});
