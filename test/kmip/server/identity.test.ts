import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createFastify } from "../../../src/api/app.ts";
import { registerKmipRoutes } from "../../../src/api/routes/sys-kmip.ts";
import type { AuditRequestEntry, AuditResponseEntry } from "../../../src/audit/types.ts";
import { resolveServerConfig } from "../../../src/config.ts";
import { KeywardError } from "../../../src/errors.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import { KmipCertificateAuthority } from "../../../src/kmip/server/certificate-authority.ts";
import { KmipCredentials } from "../../../src/kmip/server/credentials.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  type KmipClientCaSource,
  KmipIdentityResolver,
  type KmipPeerCertificate,
  kmipPolicyPath,
  operationCapability,
} from "../../../src/kmip/server/identity.ts";
import { KmipIdentityStore } from "../../../src/kmip/server/identity-store.ts";
import {
  boolean,
  bytes,
  child,
  children,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { Acl } from "../../../src/policy/acl.ts";
import { parsePolicy } from "../../../src/policy/parse.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { requestMessage, resultReason, resultStatus } from "./helpers.ts";

const CREATE_AND_GET = `
path "kmip/create" { capabilities = ["create"] }
path "kmip/get/*" { capabilities = ["read"] }
`;

/** Compiles policies from HCL texts keyed by name, as Keyward's policy store would. */
function policyStore(texts: Record<string, string>) {
  return {
    acl: async (names: readonly string[]) =>
      Acl.compile(
        names
          .filter((name) => Object.hasOwn(texts, name))
          .map((name) => parsePolicy(name, texts[name]!)),
      ),
  };
}

function certificate(fields: Partial<KmipPeerCertificate> = {}): KmipPeerCertificate {
  return {
    commonName: "client-1",
    organizationalUnits: [],
    serialNumber: "01",
    fingerprint: "00".repeat(32),
    ...fields,
  };
}

interface Setup {
  barrier: MemoryBarrier;
  identities: KmipIdentityStore;
  dispatcher: KmipDispatcher;
  records: (AuditRequestEntry | AuditResponseEntry)[];
}

function setup(
  source: KmipClientCaSource,
  policies: Record<string, string> = { "create-get": CREATE_AND_GET },
): Setup {
  const barrier = new MemoryBarrier();
  const identities = new KmipIdentityStore(barrier);
  const records: (AuditRequestEntry | AuditResponseEntry)[] = [];
  const dispatcher = new KmipDispatcher({
    store: new KmipObjectStore(barrier),
    identities: new KmipIdentityResolver({
      store: identities,
      policies: policyStore(policies),
      source,
    }),
    audit: {
      isOpen: true,
      hmac: (value: string) => `hmac:${value.length}`,
      logRequest: async (entry: AuditRequestEntry) => {
        records.push(entry);
      },
      logResponse: async (entry: AuditResponseEntry) => {
        records.push(entry);
      },
    } as never,
  });
  return { barrier, identities, dispatcher, records };
}

function role(name: string, fields: Partial<Parameters<KmipIdentityStore["writeRole"]>[0]> = {}) {
  return {
    name,
    policies: ["create-get"],
    allowedCommonNames: [],
    ttlSeconds: 3600,
    maxTtlSeconds: 7200,
    keyType: "ec" as const,
    keyBits: 256,
    ...fields,
  };
}

const createPayload: KmipItem[] = [
  enumItem("ObjectType", "SymmetricKey"),
  struct("Attributes", [
    enumItem("CryptographicAlgorithm", "AES"),
    integer("CryptographicLength", 256),
  ]),
];

async function batch(
  dispatcher: KmipDispatcher,
  peer: KmipPeerCertificate | undefined,
  items: readonly (readonly [string, readonly KmipItem[]])[],
  headerExtras: readonly KmipItem[] = [],
): Promise<StructureItem[]> {
  const response = (await dispatcher.handleMessage(requestMessage([2, 1], items, headerExtras), {
    identity: peer?.commonName,
    certificate: peer,
  })) as StructureItem;
  return children(response, "BatchItem") as StructureItem[];
}

/**
 * Stores a credential of `roleName` that Keyward's CA issued to `peer`,
 * valid for the next hour and revoked at `revokedAt` when given.
 */
async function writeIssuedCredential(
  state: Setup,
  peer: KmipPeerCertificate,
  roleName: string,
  revokedAt?: string,
): Promise<void> {
  await state.identities.writeCredential({
    serialNumber: peer.serialNumber,
    role: roleName,
    commonName: peer.commonName!,
    fingerprint: peer.fingerprint,
    issuedAt: new Date().toISOString(),
    notAfter: new Date(Date.now() + 3_600_000).toISOString(),
    ...(revokedAt === undefined ? {} : { revokedAt }),
  });
}

function uidOf(item: StructureItem): string {
  const payload = child(item, "ResponsePayload") as StructureItem;
  return textOf(child(payload, "UniqueIdentifier")!);
}

describe("kmip policy paths", () => {
  const cases: [string, string | undefined, string][] = [
    ["Create", "ignored", "kmip/create"],
    ["CreateKeyPair", undefined, "kmip/create-key-pair"],
    ["Get", "abc", "kmip/get/abc"],
    ["Get", undefined, "kmip/get"],
    ["ReKeyKeyPair", "k1", "kmip/re-key-key-pair/k1"],
    ["MACVerify", "m1", "kmip/mac-verify/m1"],
    ["RNGRetrieve", undefined, "kmip/rng-retrieve"],
    ["Locate", undefined, "kmip/locate"],
    ["WrapKey", "w1", "kmip/wrap-key/w1"],
  ];
  for (const [operation, uid, path] of cases) {
    it(`maps ${operation} to ${path}`, () => {
      assert.equal(kmipPolicyPath(operation, uid), path);
    });
  }

  it("maps operations to capabilities", () => {
    assert.equal(operationCapability("Create"), "create");
    assert.equal(operationCapability("Get"), "read");
    assert.equal(operationCapability("Locate"), "list");
    assert.equal(operationCapability("Destroy"), "delete");
    assert.equal(operationCapability("Encrypt"), "update");
  });
});

describe("kmip identities with keyward's CA", () => {
  async function issued(state: Setup, revokedAt?: string): Promise<KmipPeerCertificate> {
    await state.identities.writeRole(role("app"));
    const peer = certificate({ organizationalUnits: ["app"], serialNumber: "7f01" });
    await writeIssuedCredential(state, peer, "app", revokedAt);
    return peer;
  }

  it("allows create and get by policy", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    const [created] = await batch(state.dispatcher, peer, [["Create", createPayload]]);
    assert.equal(resultStatus(created!), "Success");
    const uid = uidOf(created!);
    const [got] = await batch(state.dispatcher, peer, [["Get", [text("UniqueIdentifier", uid)]]]);
    assert.equal(resultStatus(got!), "Success");
  });

  it("denies destroy with permission denied", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    const [created] = await batch(state.dispatcher, peer, [["Create", createPayload]]);
    const uid = uidOf(created!);
    const [destroyed] = await batch(state.dispatcher, peer, [
      ["Destroy", [text("UniqueIdentifier", uid)]],
    ]);
    assert.equal(resultStatus(destroyed!), "OperationFailed");
    assert.equal(resultReason(destroyed!), "PermissionDenied");
    assert.match(textOf(child(destroyed!, "ResultMessage")!), /kmip\/destroy\//);
    assert.ok(state.barrier.values.has(`kmip/objects/${uid}`));
  });

  it("continues a batch past a denied item", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    const items = await batch(
      state.dispatcher,
      peer,
      [
        ["Create", createPayload],
        ["Activate", []],
        ["Get", []],
      ],
      [enumItem("BatchErrorContinuationOption", "Continue")],
    );
    assert.deepEqual(items.map(resultStatus), ["Success", "OperationFailed", "Success"]);
    assert.equal(resultReason(items[1]!), "PermissionDenied");
  });

  it("stops a batch at a denied item", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    const items = await batch(state.dispatcher, peer, [
      ["Create", createPayload],
      ["Activate", []],
      ["Get", []],
    ]);
    assert.deepEqual(items.map(resultStatus), ["Success", "OperationFailed"]);
  });

  it("allows query without a policy", async () => {
    const state = setup("keyward");
    await state.identities.writeRole(role("none", { policies: [] }));
    const peer = certificate({ organizationalUnits: ["none"], serialNumber: "02" });
    await writeIssuedCredential(state, peer, "none");
    const items = await batch(state.dispatcher, peer, [
      ["Query", [enumItem("QueryFunction", "QueryOperations")]],
      ["DiscoverVersions", []],
    ]);
    assert.deepEqual(items.map(resultStatus), ["Success", "Success"]);
  });

  it("rejects a revoked credential", async () => {
    const state = setup("keyward");
    const peer = await issued(state, new Date().toISOString());
    const [item] = await batch(state.dispatcher, peer, [["Create", createPayload]]);
    assert.equal(resultReason(item!), "AuthenticationNotSuccessful");
    assert.match(textOf(child(item!, "ResultMessage")!), /revoked/);
  });

  it("rejects an unknown certificate", async () => {
    const state = setup("keyward");
    await issued(state);
    const stranger = certificate({ organizationalUnits: ["app"], fingerprint: "11".repeat(32) });
    const [item] = await batch(state.dispatcher, stranger, [["Query", []]]);
    assert.equal(resultReason(item!), "AuthenticationNotSuccessful");
  });

  it("rejects a credential after its role is deleted", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    await state.identities.deleteRole("app");
    const [item] = await batch(state.dispatcher, peer, [["Query", []]]);
    assert.equal(resultReason(item!), "AuthenticationNotSuccessful");
  });

  it("audits the identity and policies", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    await batch(state.dispatcher, peer, [["Create", createPayload]]);
    const auth = state.records[0]?.auth;
    assert.equal(auth?.displayName, "app/client-1");
    assert.deepEqual(auth?.policies, ["create-get"]);
    assert.equal(auth?.accessor, "kmip-credential:7f01");
  });

  it("audits a denied operation", async () => {
    const state = setup("keyward");
    const peer = await issued(state);
    await batch(state.dispatcher, peer, [["Destroy", [text("UniqueIdentifier", "x")]]]);
    const response = state.records[1];
    assert.match(response?.error ?? "", /^PermissionDenied: permission denied/);
  });
});

describe("kmip identities with an external CA", () => {
  it("allows everything without roles", async () => {
    const state = setup("external");
    const [item] = await batch(state.dispatcher, certificate(), [["Create", createPayload]]);
    assert.equal(resultStatus(item!), "Success");
    assert.equal(state.records[0]?.auth?.displayName, "client-1");
  });

  it("maps a common name to a role", async () => {
    const state = setup("external");
    await state.identities.writeRole(role("db", { allowedCommonNames: ["db-*"] }));
    const peer = certificate({ commonName: "db-7" });
    const [created] = await batch(state.dispatcher, peer, [["Create", createPayload]]);
    assert.equal(resultStatus(created!), "Success");
    const [destroyed] = await batch(state.dispatcher, peer, [
      ["Destroy", [text("UniqueIdentifier", uidOf(created!))]],
    ]);
    assert.equal(resultReason(destroyed!), "PermissionDenied");
  });

  it("rejects an unmatched common name", async () => {
    const state = setup("external");
    await state.identities.writeRole(role("db", { allowedCommonNames: ["db-*"] }));
    const [item] = await batch(state.dispatcher, certificate({ commonName: "web-1" }), [
      ["Query", []],
    ]);
    assert.equal(resultReason(item!), "AuthenticationNotSuccessful");
  });
});

describe("kmip server config", () => {
  const files = {
    kmip_tls_cert_file: "kmip.pem",
    kmip_tls_key_file: "kmip.key",
    kmip_client_ca_file: "clients.pem",
  };

  it("uses keyward's CA without files", () => {
    const config = resolveServerConfig({
      kmip_listen: "127.0.0.1",
      kmip_server_hostnames: "kmip.example.test, 10.0.0.5",
    });
    assert.equal(config.kmip?.tlsCertFile, undefined);
    assert.deepEqual(config.kmip?.serverHostnames, ["kmip.example.test", "10.0.0.5"]);
  });

  const failures: [string, Record<string, string>, string][] = [
    ["partial files", { kmip_listen: "127.0.0.1", kmip_tls_cert_file: "a" }, "kmip_tls_key_file"],
    [
      "hostnames with files",
      { kmip_listen: "127.0.0.1", ...files, kmip_server_hostnames: "a.test" },
      "kmip_server_hostnames",
    ],
    [
      "bad hostname",
      { kmip_listen: "127.0.0.1", kmip_server_hostnames: "a b" },
      "kmip_server_hostnames",
    ],
    ["hostnames without listen", { kmip_server_hostnames: "a.test" }, "kmip_server_hostnames"],
  ];
  for (const [name, source, field] of failures) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => resolveServerConfig(source),
        (error: unknown) => error instanceof KeywardError && error.field === field,
      );
    });
  }
});

describe("sys/kmip routes", () => {
  async function app(withCa = true) {
    const barrier = new MemoryBarrier();
    const ca = withCa ? new KmipCertificateAuthority(barrier) : undefined;
    await ca?.ensureCa();
    const fastify = createFastify();
    await registerKmipRoutes(
      fastify,
      new KmipCredentials({ store: new KmipIdentityStore(barrier), ca }),
    );
    await fastify.ready();
    return fastify;
  }

  it("issues a credential chaining to the CA", async () => {
    const fastify = await app();
    await fastify.inject({ method: "POST", url: "/v1/sys/kmip/roles/app", payload: {} });
    const response = await fastify.inject({
      method: "POST",
      url: "/v1/sys/kmip/roles/app/credential/generate",
      payload: { common_name: "backup-1" },
    });
    assert.equal(response.statusCode, 200);
    const data = response.json().data;
    const { X509Certificate } = await import("node:crypto");
    const leaf = new X509Certificate(data.certificate);
    const ca = new X509Certificate(data.ca_chain[0]);
    assert.ok(leaf.verify(ca.publicKey));
    assert.match(leaf.subject, /OU=app/);
    assert.match(leaf.subject, /CN=backup-1/);
    assert.match(data.private_key, /BEGIN PRIVATE KEY/);
  });

  it("returns the CA as PEM", async () => {
    const fastify = await app();
    const response = await fastify.inject({ method: "GET", url: "/v1/sys/kmip/ca/pem" });
    assert.equal(response.statusCode, 200);
    assert.match(response.body, /^-----BEGIN CERTIFICATE-----/);
  });

  it("rejects credentials with an external CA", async () => {
    const fastify = await app(false);
    await fastify.inject({ method: "POST", url: "/v1/sys/kmip/roles/app", payload: {} });
    const response = await fastify.inject({
      method: "POST",
      url: "/v1/sys/kmip/roles/app/credential/generate",
      payload: {},
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().code, "unsupported_operation");
    const ca = await fastify.inject({ method: "GET", url: "/v1/sys/kmip/ca" });
    assert.equal(ca.statusCode, 404);
  });

  const badRequests: [string, string, string, object | undefined, string, string][] = [
    ["role name", "POST", "/v1/sys/kmip/roles/bad%20name", {}, "invalid_field", "name"],
    [
      "empty common name pattern",
      "POST",
      "/v1/sys/kmip/roles/app",
      { allowed_common_names: [""] },
      "invalid_field",
      "allowed_common_names",
    ],
    [
      "unknown role field",
      "POST",
      "/v1/sys/kmip/roles/app",
      { colour: 1 },
      "unknown_field",
      "colour",
    ],
    [
      "root policy",
      "POST",
      "/v1/sys/kmip/roles/app",
      { policies: ["root"] },
      "invalid_field",
      "policies",
    ],
    [
      "bad policy name",
      "POST",
      "/v1/sys/kmip/roles/app",
      { token_policies: ["a b"] },
      "invalid_field",
      "token_policies",
    ],
    [
      "both policy fields",
      "POST",
      "/v1/sys/kmip/roles/app",
      { policies: ["a"], token_policies: ["b"] },
      "invalid_field",
      "policies",
    ],
    ["bad ttl", "POST", "/v1/sys/kmip/roles/app", { ttl: "soon" }, "invalid_field", "ttl"],
    [
      "ttl above max_ttl",
      "POST",
      "/v1/sys/kmip/roles/app",
      { ttl: "2h", max_ttl: "1h" },
      "invalid_field",
      "ttl",
    ],
    [
      "key type",
      "POST",
      "/v1/sys/kmip/roles/app",
      { key_type: "ed25519" },
      "invalid_field",
      "key_type",
    ],
    ["key bits", "POST", "/v1/sys/kmip/roles/app", { key_bits: 1000 }, "invalid_field", "key_bits"],
    ["missing role", "GET", "/v1/sys/kmip/roles/ghost", undefined, "not_found", ""],
    [
      "generate unknown field",
      "POST",
      "/v1/sys/kmip/roles/app/credential/generate",
      { csr: "x" },
      "unknown_field",
      "csr",
    ],
    [
      "generate ttl",
      "POST",
      "/v1/sys/kmip/roles/app/credential/generate",
      { ttl: "48h" },
      "ttl_too_long",
      "ttl",
    ],
    [
      "generate common name",
      "POST",
      "/v1/sys/kmip/roles/app/credential/generate",
      { common_name: "a/b" },
      "invalid_field",
      "common_name",
    ],
    [
      "sign without csr",
      "POST",
      "/v1/sys/kmip/roles/app/credential/sign",
      {},
      "missing_field",
      "csr",
    ],
    [
      "sign bad csr",
      "POST",
      "/v1/sys/kmip/roles/app/credential/sign",
      { csr: "garbage" },
      "invalid_certificate",
      "csr",
    ],
    [
      "revoke without serial",
      "POST",
      "/v1/sys/kmip/roles/app/credential/revoke",
      {},
      "missing_field",
      "serial_number",
    ],
    [
      "revoke bad serial",
      "POST",
      "/v1/sys/kmip/roles/app/credential/revoke",
      { serial_number: "xyz" },
      "invalid_field",
      "serial_number",
    ],
    [
      "revoke unknown serial",
      "POST",
      "/v1/sys/kmip/roles/app/credential/revoke",
      { serial_number: "0a" },
      "not_found",
      "",
    ],
    [
      "lookup without serial",
      "GET",
      "/v1/sys/kmip/roles/app/credential/lookup",
      undefined,
      "missing_field",
      "serial_number",
    ],
    [
      "list without flag",
      "GET",
      "/v1/sys/kmip/roles/app/credential",
      undefined,
      "method_not_allowed",
      "",
    ],
  ];
  for (const [name, method, url, payload, code, field] of badRequests) {
    it(`rejects ${name}`, async () => {
      const fastify = await app();
      await fastify.inject({
        method: "POST",
        url: "/v1/sys/kmip/roles/app",
        payload: { ttl: "1h", max_ttl: "24h", allowed_common_names: ["*"] },
      });
      const response = await fastify.inject({
        method: method as "GET" | "POST",
        url,
        ...(payload === undefined ? {} : { payload }),
      });
      assert.ok(response.statusCode >= 400, response.body);
      assert.ok(response.statusCode < 500, response.body);
      const body = response.json();
      assert.equal(body.code, code, response.body);
      if (field !== "") assert.equal(body.field, field, response.body);
    });
  }
});

describe("kmip streams and policies", () => {
  const policies = {
    owner: `path "kmip/*" { capabilities = ["create", "read", "update"] }`,
    "encrypt-any": `path "kmip/encrypt" { capabilities = ["update"] }`,
    getter: `path "kmip/get/*" { capabilities = ["read"] }`,
    rekeyer: `path "kmip/re-key-key-pair/allowed-*" { capabilities = ["create"] }`,
  };

  /** Issues a credential of `roleName` with CN `shared`, distinguished by its serial and fingerprint. */
  async function credential(state: Setup, roleName: string, serial: string) {
    await state.identities.writeRole(role(roleName, { policies: [roleName] }));
    const peer = certificate({
      commonName: "shared",
      organizationalUnits: [roleName],
      serialNumber: serial,
      fingerprint: serial.repeat(32),
    });
    await writeIssuedCredential(state, peer, roleName);
    return peer;
  }

  /** Creates an active AES key as `peer` and opens a CBC encryption stream on it. */
  async function openStream(state: Setup, peer: KmipPeerCertificate) {
    const [created] = await batch(state.dispatcher, peer, [
      [
        "Create",
        [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", 256),
            integer("CryptographicUsageMask", 0x4),
          ]),
        ],
      ],
      ["Activate", []],
    ]);
    const uid = uidOf(created!);
    const [opened] = await batch(state.dispatcher, peer, [
      [
        "Encrypt",
        [
          text("UniqueIdentifier", uid),
          struct("CryptographicParameters", [
            enumItem("BlockCipherMode", "CBC"),
            enumItem("PaddingMethod", "PKCS5"),
          ]),
          bytes("Data", Buffer.alloc(16, 1)),
          bytes("IVCounterNonce", Buffer.alloc(16, 2)),
          boolean("InitIndicator", true),
        ],
      ],
    ]);
    assert.equal(resultStatus(opened!), "Success");
    const payload = child(opened!, "ResponsePayload") as StructureItem;
    return { uid, correlation: child(payload, "CorrelationValue")! };
  }

  it("keeps a stream to its certificate", async () => {
    const state = setup("keyward", policies);
    const owner = await credential(state, "owner", "0a");
    const { correlation } = await openStream(state, owner);
    // Another role's credential with the same CN and a grant on the object may not continue it.
    const other = await credential(state, "owner", "0b");
    const [continued] = await batch(state.dispatcher, other, [
      ["Encrypt", [bytes("Data", Buffer.alloc(16, 3)), correlation]],
    ]);
    assert.equal(resultReason(continued!), "InvalidCorrelationValue");
  });

  it("checks a continuation against the stream's object", async () => {
    const state = setup("keyward", policies);
    const owner = await credential(state, "owner", "0c");
    const { uid, correlation } = await openStream(state, owner);
    const [continued] = await batch(state.dispatcher, owner, [
      ["Encrypt", [bytes("Data", Buffer.alloc(16, 3)), correlation]],
    ]);
    assert.equal(resultStatus(continued!), "Success");

    const encryptAny = await credential(state, "encrypt-any", "0d");
    const [denied] = await batch(state.dispatcher, encryptAny, [
      ["Encrypt", [bytes("Data", Buffer.alloc(16, 3)), correlation]],
    ]);
    assert.equal(resultReason(denied!), "PermissionDenied");
    const message = child(denied!, "ResultMessage");
    assert.ok(message !== undefined);
    assert.ok(textOf(message).includes(`kmip/encrypt/${uid}`));
  });

  it("checks re-key key pair on the private key", async () => {
    const state = setup("keyward", policies);
    const owner = await credential(state, "owner", "10");
    const rekeyer = await credential(state, "rekeyer", "11");
    const [pair] = await batch(state.dispatcher, owner, [
      [
        "CreateKeyPair",
        [
          struct("CommonAttributes", [
            enumItem("CryptographicAlgorithm", "EC"),
            integer("CryptographicLength", 256),
          ]),
        ],
      ],
    ]);
    const payload = child(pair!, "ResponsePayload") as StructureItem;
    const privateUid = textOf(child(payload, "PrivateKeyUniqueIdentifier")!);
    const [denied] = await batch(state.dispatcher, rekeyer, [
      ["ReKeyKeyPair", [text("PrivateKeyUniqueIdentifier", privateUid)]],
    ]);
    assert.equal(resultReason(denied!), "PermissionDenied");
    const message = child(denied!, "ResultMessage");
    assert.ok(message !== undefined);
    assert.ok(textOf(message).includes(`kmip/re-key-key-pair/${privateUid}`));

    const [allowed] = await batch(state.dispatcher, owner, [
      ["ReKeyKeyPair", [text("PrivateKeyUniqueIdentifier", privateUid)]],
    ]);
    assert.equal(resultStatus(allowed!), "Success");
  });

  it("checks the wrapping key of a get", async () => {
    const state = setup("keyward", policies);
    const owner = await credential(state, "owner", "0e");
    const [target, wrapping] = await batch(state.dispatcher, owner, [
      ["Create", createPayload],
      [
        "Create",
        [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", 256),
            integer("CryptographicUsageMask", 0x10),
          ]),
        ],
      ],
    ]);
    const wrappingUid = uidOf(wrapping!);
    const getter = await credential(state, "getter", "0f");
    const [denied] = await batch(state.dispatcher, getter, [
      [
        "Get",
        [
          text("UniqueIdentifier", uidOf(target!)),
          struct("KeyWrappingSpecification", [
            enumItem("WrappingMethod", "Encrypt"),
            struct("EncryptionKeyInformation", [
              text("UniqueIdentifier", wrappingUid),
              struct("CryptographicParameters", [enumItem("BlockCipherMode", "NISTKeyWrap")]),
            ]),
          ]),
        ],
      ],
    ]);
    assert.equal(resultReason(denied!), "PermissionDenied");
    const message = child(denied!, "ResultMessage");
    assert.ok(message !== undefined);
    assert.ok(textOf(message).includes(`kmip/wrap-key/${wrappingUid}`));
  });
});
