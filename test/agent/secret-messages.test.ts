import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateWifiFile } from "../../src/agent/wifi-validation.ts";

describe("Wi-Fi validation messages", () => {
  it("sae_password error hides password parts", () => {
    // A password with "|" splits, and the part after it reads as an option named "s3cr3t-tail".
    const text = "sae_password=hunter2|s3cr3t-tail=x|mac=02:00:00:00:00:01\n";
    assert.throws(
      () => validateWifiFile("sae_password", text),
      (error: Error) => {
        assert.match(error.message, /line 1: invalid option/);
        assert.doesNotMatch(error.message, /s3cr3t/);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      },
    );
  });

  it("sae_password error hides a bad id value", () => {
    const text = "sae_password=hunter2|id=\x01secret\n";
    assert.throws(
      () => validateWifiFile("sae_password", text),
      (error: Error) => {
        assert.doesNotMatch(error.message, /secret|hunter2/);
        return true;
      },
    );
  });
});
