import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { generateKeyPair } from "../../../src/engines/pki/key-pairs.ts";
import {
  CA_LIFETIME_DAYS,
  CA_RENEW_BEFORE_DAYS,
  KmipCertificateAuthority,
} from "../../../src/kmip/server/certificate-authority.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Returns a CA whose clock the test moves, and the function that moves it. */
function caWithClock(barrier = new MemoryBarrier()) {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const ca = new KmipCertificateAuthority(barrier, { clock: () => new Date(now) });
  return {
    ca,
    barrier,
    advanceDays: (days: number) => {
      now += days * DAY_MS;
    },
  };
}

async function clientCertificate(ca: KmipCertificateAuthority): Promise<X509Certificate> {
  const pair = await generateKeyPair({ type: "ec", bits: 256 });
  const issued = await ca.issueClientCertificate({
    publicKey: pair.spki,
    keySpec: { type: "ec", bits: 256 },
    role: "storage",
    commonName: "array-1",
    ttlSeconds: 3 * 365 * 24 * 3600,
  });
  return new X509Certificate(issued.certificate);
}

describe("KMIP CA renewal", () => {
  it("keeps the certificate outside the window", async () => {
    const { ca, advanceDays } = caWithClock();
    const first = await ca.ensureCa();
    advanceDays(CA_LIFETIME_DAYS - CA_RENEW_BEFORE_DAYS - 1);
    assert.equal(await ca.ensureCa(), first);
  });

  it("renews with the same key and subject", async () => {
    const { ca, advanceDays } = caWithClock();
    const first = new X509Certificate(await ca.ensureCa());
    const issuedBefore = await clientCertificate(ca);
    advanceDays(CA_LIFETIME_DAYS - CA_RENEW_BEFORE_DAYS + 1);

    const renewed = new X509Certificate(await ca.ensureCa());
    assert.notEqual(renewed.serialNumber, first.serialNumber);
    assert.equal(renewed.subject, first.subject);
    assert.ok(renewed.publicKey.equals(first.publicKey));
    assert.ok(Date.parse(renewed.validTo) > Date.parse(first.validTo));
    assert.ok(renewed.verify(renewed.publicKey));
    // A certificate signed before the renewal chains to the new CA certificate.
    assert.ok(issuedBefore.checkIssued(renewed));
    assert.ok(issuedBefore.verify(renewed.publicKey));
  });

  it("stores the renewal for other readers", async () => {
    const { ca, barrier, advanceDays } = caWithClock();
    await ca.ensureCa();
    advanceDays(CA_LIFETIME_DAYS - CA_RENEW_BEFORE_DAYS + 1);
    const renewed = await ca.ensureCa();
    const other = new KmipCertificateAuthority(barrier, {
      clock: () => new Date(Date.parse("2026-01-01T00:00:00Z") + CA_LIFETIME_DAYS * DAY_MS),
    });
    assert.equal(await other.caCertificate(), renewed);
  });

  it("lets new certificates outlive the old CA", async () => {
    const { ca, advanceDays } = caWithClock();
    const first = new X509Certificate(await ca.ensureCa());
    advanceDays(CA_LIFETIME_DAYS - 30);
    const issued = await clientCertificate(ca);
    assert.ok(Date.parse(issued.validTo) > Date.parse(first.validTo));
  });

  it("renews a cached CA", async () => {
    const { ca, advanceDays } = caWithClock();
    const first = await ca.ensureCa();
    advanceDays(CA_LIFETIME_DAYS - 10);
    const credentials = await ca.serverCredentials("node-1", ["localhost"]);
    assert.notEqual(credentials.credentials.ca, first);
    const server = new X509Certificate(credentials.credentials.cert);
    assert.ok(server.checkIssued(new X509Certificate(credentials.credentials.ca)));
  });
});
