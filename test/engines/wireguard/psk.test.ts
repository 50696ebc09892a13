import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hkdfExpandBlock } from "../../../src/engines/wireguard/psk.ts";

describe("wireguard preshared key derivation", () => {
  it("matches RFC 5869 test case 1", () => {
    // RFC 5869 appendix A.1: the PRK and info of test case 1; T(1) is the first 32 bytes of OKM.
    const prk = Buffer.from(
      "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
      "hex",
    );
    const info = Buffer.from("f0f1f2f3f4f5f6f7f8f9", "hex");
    assert.equal(
      hkdfExpandBlock(prk, info).toString("hex"),
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf",
    );
  });
});
