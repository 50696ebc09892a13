import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readConfigFile, readEnvironment, resolveServerConfig } from "../../src/config.ts";
import { configError } from "./config-error.ts";

/** Any existing file: the settings check only that the library exists. */
const LIBRARY = process.execPath;
const PIN = "settings-pin-1122";

describe("PKCS#11 seal settings", () => {
  const folder = mkdtempSync(join(tmpdir(), "keyward-seal-settings-"));
  after(() => rmSync(folder, { recursive: true, force: true }));

  it("off without a library", () => {
    assert.equal(resolveServerConfig({}).sealPkcs11, undefined);
  });

  it("reads the environment", () => {
    const env = readEnvironment({
      KEYWARD_SEAL_PKCS11_LIBRARY: LIBRARY,
      KEYWARD_SEAL_PKCS11_TOKEN_LABEL: "keyward",
      KEYWARD_SEAL_PKCS11_PIN: PIN,
    });
    const seal = resolveServerConfig(env).sealPkcs11;
    assert.ok(seal);
    assert.equal(seal.library, LIBRARY);
    assert.equal(seal.tokenLabel, "keyward");
    assert.equal(seal.keyLabel, "keyward-root-wrapping-key");
    assert.equal(seal.readPin(), PIN);
  });

  it("configuration never shows the PIN", () => {
    const config = resolveServerConfig({
      seal_pkcs11_library: LIBRARY,
      seal_pkcs11_token_label: "keyward",
      seal_pkcs11_pin: PIN,
    });
    assert.ok(!JSON.stringify(config).includes(PIN));
  });

  it("reads the PIN file", () => {
    const pinFile = join(folder, "pin");
    writeFileSync(pinFile, `${PIN}\n`);
    const seal = resolveServerConfig({
      seal_pkcs11_library: LIBRARY,
      seal_pkcs11_token_label: "keyward",
      seal_pkcs11_key_label: "custom label",
      seal_pkcs11_pin_file: pinFile,
    }).sealPkcs11;
    assert.equal(seal?.readPin(), PIN, "the trailing newline is not part of the PIN");
    assert.equal(seal?.keyLabel, "custom label");
  });

  it("empty or missing PIN file fails", () => {
    const empty = join(folder, "empty-pin");
    writeFileSync(empty, "\n");
    for (const pinFile of [empty, join(folder, "absent-pin")]) {
      const seal = resolveServerConfig({
        seal_pkcs11_library: LIBRARY,
        seal_pkcs11_token_label: "keyward",
        seal_pkcs11_pin_file: pinFile,
      }).sealPkcs11;
      assert.throws(() => seal?.readPin(), configError("seal_pkcs11_pin_file"));
    }
  });

  const invalid: Array<[string, Record<string, unknown>, string, RegExp]> = [
    [
      "token label without library",
      { seal_pkcs11_token_label: "keyward" },
      "seal_pkcs11_token_label",
      /needs seal_pkcs11_library/,
    ],
    [
      "missing library file",
      { seal_pkcs11_library: join("/nonexistent", "libpkcs11.so") },
      "seal_pkcs11_library",
      /does not exist/,
    ],
    [
      "missing token label",
      { seal_pkcs11_library: LIBRARY, seal_pkcs11_pin: PIN },
      "seal_pkcs11_token_label",
      /needs the label of its token/,
    ],
    [
      "token label over 32 bytes",
      { seal_pkcs11_library: LIBRARY, seal_pkcs11_token_label: "t".repeat(33) },
      "seal_pkcs11_token_label",
      /at most 32 bytes/,
    ],
    [
      "key label with a control character",
      {
        seal_pkcs11_library: LIBRARY,
        seal_pkcs11_token_label: "keyward",
        seal_pkcs11_key_label: "bad\nlabel",
        seal_pkcs11_pin: PIN,
      },
      "seal_pkcs11_key_label",
      /printable ASCII/,
    ],
    [
      "no PIN source",
      { seal_pkcs11_library: LIBRARY, seal_pkcs11_token_label: "keyward" },
      "seal_pkcs11_pin_file",
      /KEYWARD_SEAL_PKCS11_PIN/,
    ],
    [
      "two PIN sources",
      {
        seal_pkcs11_library: LIBRARY,
        seal_pkcs11_token_label: "keyward",
        seal_pkcs11_pin_file: "pin",
        seal_pkcs11_pin: PIN,
      },
      "seal_pkcs11_pin_file",
      /not both/,
    ],
    [
      "dev mode",
      {
        seal_pkcs11_library: LIBRARY,
        seal_pkcs11_token_label: "keyward",
        seal_pkcs11_pin: PIN,
        dev: true,
      },
      "dev",
      /cannot run with a PKCS#11 seal/,
    ],
  ];
  for (const [title, source, field, pattern] of invalid) {
    it(`rejects ${title}`, () => {
      assert.throws(() => resolveServerConfig(source), configError(field, pattern));
    });
  }

  it("config file cannot hold the PIN", () => {
    const file = join(folder, "config.json");
    writeFileSync(file, JSON.stringify({ seal_pkcs11_pin: PIN }));
    assert.throws(
      () => readConfigFile(file),
      (error: unknown) => {
        configError("seal_pkcs11_pin", /seal_pkcs11_pin_file/)(error);
        assert.ok(!(error as Error).message.includes(PIN));
        return true;
      },
    );
  });

  it("config file takes the seal fields", () => {
    const file = join(folder, "seal-config.json");
    writeFileSync(
      file,
      JSON.stringify({
        seal_pkcs11_library: LIBRARY,
        seal_pkcs11_token_label: "keyward",
        seal_pkcs11_key_label: "root-wrap",
        seal_pkcs11_pin_file: join(folder, "pin"),
      }),
    );
    const seal = resolveServerConfig(readConfigFile(file)).sealPkcs11;
    assert.equal(seal?.keyLabel, "root-wrap");
  });
});
