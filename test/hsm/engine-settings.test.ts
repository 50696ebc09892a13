import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readConfigFile, readEnvironment, resolveServerConfig } from "../../src/config.ts";
import { configError } from "./config-error.ts";

/** Any existing file: the settings check only that the library exists. */
const LIBRARY = process.execPath;
const PIN = "engine-settings-pin-5511";

describe("engine HSM settings", () => {
  const folder = mkdtempSync(join(tmpdir(), "keyward-engine-hsm-settings-"));
  after(() => rmSync(folder, { recursive: true, force: true }));

  it("off without a library", () => {
    assert.equal(resolveServerConfig({}).hsmPkcs11, undefined);
  });

  it("reads the environment", () => {
    const env = readEnvironment({
      KEYWARD_HSM_PKCS11_LIBRARY: LIBRARY,
      KEYWARD_HSM_PKCS11_TOKEN_LABEL: "engines",
      KEYWARD_HSM_PKCS11_PIN: PIN,
    });
    const config = resolveServerConfig(env);
    assert.equal(config.sealPkcs11, undefined, "the engine HSM does not turn on the seal");
    assert.equal(config.hsmPkcs11?.library, LIBRARY);
    assert.equal(config.hsmPkcs11?.tokenLabel, "engines");
    assert.equal(config.hsmPkcs11?.readPin(), PIN);
    assert.ok(!JSON.stringify(config).includes(PIN), "the configuration never shows the PIN");
  });

  it("reads the PIN file", () => {
    const pinFile = join(folder, "pin");
    writeFileSync(pinFile, `${PIN}\n`);
    const hsm = resolveServerConfig({
      hsm_pkcs11_library: LIBRARY,
      hsm_pkcs11_token_label: "engines",
      hsm_pkcs11_pin_file: pinFile,
    }).hsmPkcs11;
    assert.equal(hsm?.readPin(), PIN);
  });

  it("may name the seal's token", () => {
    const config = resolveServerConfig({
      seal_pkcs11_library: LIBRARY,
      seal_pkcs11_token_label: "keyward",
      seal_pkcs11_pin: PIN,
      hsm_pkcs11_library: LIBRARY,
      hsm_pkcs11_token_label: "keyward",
      hsm_pkcs11_pin: PIN,
    });
    assert.equal(config.sealPkcs11?.tokenLabel, "keyward");
    assert.equal(config.hsmPkcs11?.tokenLabel, "keyward");
  });

  it("allowed in dev mode", () => {
    const config = resolveServerConfig({
      hsm_pkcs11_library: LIBRARY,
      hsm_pkcs11_token_label: "engines",
      hsm_pkcs11_pin: PIN,
      dev: true,
    });
    assert.equal(config.hsmPkcs11?.tokenLabel, "engines");
  });

  const invalid: Array<[string, Record<string, unknown>, string, RegExp]> = [
    [
      "token label without library",
      { hsm_pkcs11_token_label: "engines" },
      "hsm_pkcs11_token_label",
      /needs hsm_pkcs11_library/,
    ],
    [
      "PIN file without library",
      { hsm_pkcs11_pin_file: "pin" },
      "hsm_pkcs11_pin_file",
      /needs hsm_pkcs11_library/,
    ],
    [
      "missing library file",
      { hsm_pkcs11_library: join("/nonexistent", "libpkcs11.so") },
      "hsm_pkcs11_library",
      /does not exist/,
    ],
    [
      "missing token label",
      { hsm_pkcs11_library: LIBRARY, hsm_pkcs11_pin: PIN },
      "hsm_pkcs11_token_label",
      /engines' HSM needs the label of its token/,
    ],
    [
      "token label over 32 bytes",
      { hsm_pkcs11_library: LIBRARY, hsm_pkcs11_token_label: "t".repeat(33) },
      "hsm_pkcs11_token_label",
      /at most 32 bytes/,
    ],
    [
      "a library that is no string",
      { hsm_pkcs11_library: 7 },
      "hsm_pkcs11_library",
      /expected a string, got 7/,
    ],
    [
      "a token label that is no string",
      { hsm_pkcs11_library: LIBRARY, hsm_pkcs11_token_label: ["a"], hsm_pkcs11_pin: PIN },
      "hsm_pkcs11_token_label",
      /expected a string/,
    ],
    [
      "no PIN source",
      { hsm_pkcs11_library: LIBRARY, hsm_pkcs11_token_label: "engines" },
      "hsm_pkcs11_pin_file",
      /KEYWARD_HSM_PKCS11_PIN/,
    ],
    [
      "two PIN sources",
      {
        hsm_pkcs11_library: LIBRARY,
        hsm_pkcs11_token_label: "engines",
        hsm_pkcs11_pin_file: "pin",
        hsm_pkcs11_pin: PIN,
      },
      "hsm_pkcs11_pin_file",
      /not both/,
    ],
  ];
  for (const [title, source, field, pattern] of invalid) {
    it(`rejects ${title}`, () => {
      assert.throws(
        () => resolveServerConfig(source as Record<string, string>),
        configError(field, pattern),
      );
    });
  }

  it("empty PIN file fails when read", () => {
    const empty = join(folder, "empty-pin");
    writeFileSync(empty, "\n");
    const hsm = resolveServerConfig({
      hsm_pkcs11_library: LIBRARY,
      hsm_pkcs11_token_label: "engines",
      hsm_pkcs11_pin_file: empty,
    }).hsmPkcs11;
    assert.throws(() => hsm?.readPin(), configError("hsm_pkcs11_pin_file", /is empty/));
  });

  it("config file cannot hold the PIN", () => {
    const file = join(folder, "config-with-pin.json");
    writeFileSync(file, JSON.stringify({ hsm_pkcs11_pin: PIN }));
    assert.throws(
      () => readConfigFile(file),
      (error: unknown) => {
        configError("hsm_pkcs11_pin", /hsm_pkcs11_pin_file/)(error);
        assert.ok(!(error as Error).message.includes(PIN));
        return true;
      },
    );
  });

  it("config file takes the fields", () => {
    const file = join(folder, "config.json");
    writeFileSync(
      file,
      JSON.stringify({
        hsm_pkcs11_library: LIBRARY,
        hsm_pkcs11_token_label: "engines",
        hsm_pkcs11_pin_file: join(folder, "pin"),
      }),
    );
    const hsm = resolveServerConfig(readConfigFile(file)).hsmPkcs11;
    assert.equal(hsm?.tokenLabel, "engines");
  });
});
