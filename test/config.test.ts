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

describe("server config kmip", () => {
  const files = {
    kmip_tls_cert_file: "kmip.pem",
    kmip_tls_key_file: "kmip.key",
    kmip_client_ca_file: "clients.pem",
  };

  it("is off without kmip_listen", () => {
    assert.equal(resolveServerConfig({}).kmip, undefined);
  });

  it("uses port 5696 for a bare host", () => {
    const config = resolveServerConfig({ kmip_listen: "127.0.0.1", ...files });
    assert.equal(config.kmip?.host, "127.0.0.1");
    assert.equal(config.kmip?.port, 5696);
    assert.equal(config.kmip?.tlsCertFile, resolve("kmip.pem"));
  });

  it("reads the KMIP environment", () => {
    const env = readEnvironment({
      KEYWARD_KMIP_LISTEN: "127.0.0.1:15696",
      KEYWARD_KMIP_TLS_CERT_FILE: "a.pem",
      KEYWARD_KMIP_TLS_KEY_FILE: "a.key",
      KEYWARD_KMIP_CLIENT_CA_FILE: "ca.pem",
    });
    assert.equal(resolveServerConfig(env).kmip?.port, 15696);
  });

  const failures: [string, Record<string, string>, string][] = [
    [
      "fail missing client CA",
      { kmip_listen: "127.0.0.1", ...files, kmip_client_ca_file: "" },
      "kmip_client_ca_file",
    ],
    ["fail file without listen", { kmip_tls_cert_file: "kmip.pem" }, "kmip_tls_cert_file"],
    ["fail bad kmip address", { kmip_listen: "[::1", ...files }, "kmip_listen"],
  ];
  for (const [name, source, field] of failures) {
    it(name, () => {
      const cleaned = Object.fromEntries(
        Object.entries(source).filter(([, value]) => value !== ""),
      );
      assert.throws(
        () => resolveServerConfig(cleaned),
        (error: unknown) => error instanceof KeywardError && error.field === field,
      );
    });
  }
});

describe("server config cluster", () => {
  it("reads node id and api address", () => {
    const env = readEnvironment({
      KEYWARD_NODE_ID: "kw-1.dc_a",
      KEYWARD_API_ADDR: "https://kw-1.internal:8200/",
    });
    const config = resolveServerConfig(env);
    assert.equal(config.nodeId, "kw-1.dc_a");
    assert.equal(config.apiAddress, "https://kw-1.internal:8200");
  });

  it("leaves both unset by default", () => {
    const config = resolveServerConfig({});
    assert.equal(config.nodeId, undefined);
    assert.equal(config.apiAddress, undefined);
  });

  for (const [field, value] of [
    ["node_id", "-leading-dash"],
    ["node_id", "has space"],
    ["node_id", "x".repeat(65)],
    ["api_addr", "kw-1:8200"],
    ["api_addr", "ftp://kw-1"],
    ["api_addr", "https://kw-1/v1"],
    ["api_addr", "http://user:secret@127.0.0.1:8200"],
    ["api_addr", "http://127.0.0.1:8200/?q=1"],
    ["api_addr", "http://127.0.0.1:8200/#top"],
    ["node_id", null],
    ["node_id", 12],
    ["api_addr", null],
  ] as const) {
    it(`fail ${field} ${JSON.stringify(value).slice(0, 20)}`, () => {
      assert.throws(
        () => resolveServerConfig({ [field]: value } as Record<string, string>),
        (error) =>
          error instanceof KeywardError && error.code === "invalid_field" && error.field === field,
      );
    });
  }
});
