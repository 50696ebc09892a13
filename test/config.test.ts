import assert from "node:assert/strict";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { readEnvironment, resolveServerConfig } from "../src/config.ts";
import { KeywardError } from "../src/errors.ts";

describe("server config storage", () => {
  it("defaults to the data directory", () => {
    const config = resolveServerConfig({ data_dir: "/var/lib/keyward" });
    assert.equal(config.storage, "/var/lib/keyward");
    assert.equal(config.storageCaFile, undefined);
  });

  it("reads KEYWARD_STORAGE and KEYWARD_STORAGE_CA", () => {
    const env = readEnvironment({
      KEYWARD_STORAGE: "postgres://keyward@db.internal/keyward?sslmode=verify-full",
      KEYWARD_STORAGE_CA: "certs/db-ca.pem",
    });
    const config = resolveServerConfig(env);
    assert.equal(config.storage, "postgres://keyward@db.internal/keyward?sslmode=verify-full");
    assert.equal(config.storageCaFile, resolve("certs/db-ca.pem"));
  });

  it("flag wins over environment", () => {
    const env = readEnvironment({ KEYWARD_STORAGE: "postgres://db.internal/from-env" });
    const config = resolveServerConfig(env, { storage: "sqlite:/tmp/from-flag.db" });
    assert.equal(config.storage, "sqlite:/tmp/from-flag.db");
  });

  it("fail invalid storage location", () => {
    assert.throws(
      () => resolveServerConfig({ storage: "sqlite:" }),
      (error) =>
        error instanceof KeywardError &&
        error.code === "invalid_field" &&
        error.field === "storage",
    );
  });
});
