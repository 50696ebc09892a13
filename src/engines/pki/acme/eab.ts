import { randomBytes } from "node:crypto";
import { flattenedVerify, type JWK } from "jose";
import type { AcmeContext, AcmeScope } from "./context.ts";
import { newId } from "./context.ts";
import { jwkThumbprint, readFlattenedJws } from "./jws.ts";
import { AcmeProblem } from "./problems.ts";
import type { EabKeyRecord } from "./records.ts";
import type { AcmeStore } from "./storage.ts";
import { directoryPath } from "./urls.ts";

/** MAC algorithms accepted on an external account binding (RFC 8555 section 7.3.4 requires HS256). */
const EAB_ALGORITHMS = ["HS256", "HS384", "HS512"];

/** Length of a new EAB key, in bytes. */
const EAB_KEY_BYTES = 32;

/** An EAB key as the API lists it: everything but the key. */
export interface EabKeyView {
  id: string;
  key_type: string;
  acme_directory: string;
  created_on: string;
  used: boolean;
}

function view(record: EabKeyRecord): EabKeyView {
  return {
    id: record.id,
    key_type: record.keyType,
    acme_directory: `${directoryPath(record.directory).slice(1)}/directory`,
    created_on: record.createdAt,
    used: record.usedBy !== undefined,
  };
}

/** Creates an EAB key for one directory; the response is the only time the key is returned. */
export async function createEabKey(
  store: AcmeStore,
  directory: string,
  now: Date,
): Promise<EabKeyView & { key: string }> {
  const record: EabKeyRecord = {
    id: newId(),
    directory,
    keyType: "hs",
    key: randomBytes(EAB_KEY_BYTES).toString("base64url"),
    createdAt: now.toISOString(),
  };
  await store.putEabKey(record);
  return { ...view(record), key: record.key };
}

export async function listEabKeys(store: AcmeStore): Promise<EabKeyView[]> {
  const views: EabKeyView[] = [];
  for (const id of await store.listEabKeys()) {
    const record = await store.eabKey(id);
    if (record) views.push(view(record));
  }
  return views;
}

/**
 * Verifies the `externalAccountBinding` of a newAccount request (RFC 8555
 * section 7.3.4): a JWS MACed with an EAB key of this directory, over the
 * account's public key, with the newAccount URL and no nonce. Returns the
 * EAB key's id; the caller marks the key used once the account exists.
 */
export async function verifyExternalAccountBinding(
  context: AcmeContext,
  scope: AcmeScope,
  binding: unknown,
  accountJwk: JWK,
): Promise<EabKeyRecord> {
  const jws = readFlattenedJws(binding);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", "the externalAccountBinding protected header is not JSON");
  }
  if (typeof header.alg !== "string" || !EAB_ALGORITHMS.includes(header.alg)) {
    throw new AcmeProblem(
      "malformed",
      `the externalAccountBinding must use one of ${EAB_ALGORITHMS.join(", ")}`,
    );
  }
  if (header.nonce !== undefined) {
    throw new AcmeProblem("malformed", 'the externalAccountBinding must not have a "nonce"');
  }
  if (header.url !== scope.requestUrl) {
    throw new AcmeProblem(
      "unauthorized",
      'the externalAccountBinding "url" is not the newAccount URL',
    );
  }
  const key = typeof header.kid === "string" ? await context.store.eabKey(header.kid) : undefined;
  if (!key || key.directory !== scope.directory) {
    throw new AcmeProblem(
      "unauthorized",
      "the externalAccountBinding names no EAB key of this directory",
    );
  }
  if (key.usedBy !== undefined) {
    throw new AcmeProblem(
      "unauthorized",
      "the EAB key has already bound an account; create a new one",
    );
  }
  let payload: Uint8Array;
  try {
    const result = await flattenedVerify(jws, Buffer.from(key.key, "base64url"), {
      algorithms: EAB_ALGORITHMS,
    });
    payload = result.payload;
  } catch (error) {
    throw new AcmeProblem("unauthorized", "the externalAccountBinding MAC does not verify", {
      cause: error,
    });
  }
  let boundJwk: JWK;
  try {
    boundJwk = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", "the externalAccountBinding payload is not a JWK");
  }
  if ((await jwkThumbprint(boundJwk)) !== (await jwkThumbprint(accountJwk))) {
    throw new AcmeProblem(
      "unauthorized",
      "the externalAccountBinding binds another key than the account's",
    );
  }
  return key;
}
