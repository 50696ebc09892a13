import { randomBytes } from "node:crypto";
import { KeywardError, missingField, notFound } from "../../errors.ts";
import type { CaAuthority } from "./ca.ts";
import { checkCertifiableKey } from "./certifiable-keys.ts";
import {
  certificateKeyType,
  encodeCertificate,
  NONCE_BYTES,
  VALID_FOREVER,
} from "./certificate.ts";
import { type CertificatePlan, planCertificate } from "./issuance.ts";
import { encodeOpensshPrivateKey } from "./private-keys.ts";
import {
  fingerprintSha256,
  formatPublicKeyLine,
  type KeyAlgorithm,
  parsePublicKeyLine,
  publicKeyBlob,
  type SshPublicKey,
} from "./public-keys.ts";
import type { RevocationRegistry } from "./revocation.ts";
import { keyLengthRule } from "./roles.ts";
import { generateSshKeyPair, resolveKeySpec, signSsh } from "./signatures.ts";
import type { SshStore } from "./store.ts";
import type {
  CertificateRecord,
  IssueRequest,
  IssueResult,
  Logger,
  RequesterIdentity,
  SignRequest,
  SignResult,
  SshRole,
} from "./types.ts";

/** RSA size of keys that `issue` generates when the request and role name none. */
const DEFAULT_ISSUE_RSA_BITS = 3072;

/** Attempts at drawing an unused serial before giving up; a collision of random 64-bit serials is already unlikely. */
const SERIAL_ATTEMPTS = 8;

export interface SigningContext {
  store: SshStore;
  ca: CaAuthority;
  revocations: RevocationRegistry;
  logger: Logger;
  mount: string;
  now: Date;
}

export function certificatePath(serial: string): string {
  return `certs/${serial}`;
}

/** Returns a random serial in 1 to 2^64-1 as 16 hex digits; 0 is skipped so no certificate has the zero serial. */
function randomSerial(): string {
  for (;;) {
    const serial = randomBytes(8).toString("hex");
    if (serial !== "0000000000000000") return serial;
  }
}

async function loadRole(store: SshStore, name: string): Promise<SshRole> {
  const role = await store.get<SshRole>(`roles/${name}`);
  if (!role) throw notFound(`role "${name}"`);
  return role;
}

async function rejectRevokedKey(revocations: RevocationRegistry, key: SshPublicKey, field: string) {
  const fingerprint = fingerprintSha256(key.blob);
  const state = await revocations.state();
  if (state.publicKeys.some((entry) => entry.fingerprint === fingerprint)) {
    throw new KeywardError("invalid_state", `"${field}" is a revoked key; use another key`, {
      field,
    });
  }
}

/**
 * Signs `key` under the plan with the CA of the plan's type, stores the
 * record unless the role sets `no_store`, and returns the result.
 */
async function certify(
  context: SigningContext,
  roleName: string,
  role: SshRole,
  key: SshPublicKey,
  plan: CertificatePlan,
): Promise<SignResult> {
  const signer = await context.ca.signer(plan.type);
  const rsaAlgorithm = role.algorithmSigner === "" ? undefined : role.algorithmSigner;
  let serial = randomSerial();
  if (!role.noStore) {
    for (let attempt = 1; await context.store.get(certificatePath(serial)); attempt += 1) {
      if (attempt >= SERIAL_ATTEMPTS) {
        throw new KeywardError("internal", "internal error", {
          details: { reason: "no unused certificate serial found" },
        });
      }
      serial = randomSerial();
    }
  }
  const blob = encodeCertificate(
    {
      key: { algorithm: key.algorithm as KeyAlgorithm, blob: key.blob },
      nonce: randomBytes(NONCE_BYTES),
      serial: BigInt(`0x${serial}`),
      ...plan,
    },
    signer.publicBlob,
    (data) => signSsh(signer.privateKey, signer.record.algorithm, rsaAlgorithm, data),
  );
  const signedKey = `${formatPublicKeyLine(certificateKeyType(key.algorithm as KeyAlgorithm), blob)}\n`;

  if (!role.noStore) {
    const record: CertificateRecord = {
      serialNumber: serial,
      keyId: plan.keyId,
      certType: plan.type,
      principals: plan.principals,
      validAfter: secondsToIso(plan.validAfter),
      validBefore: plan.validBefore === VALID_FOREVER ? "forever" : secondsToIso(plan.validBefore),
      role: roleName,
      publicKeyFingerprint: fingerprintSha256(key.blob),
      caKeyId: signer.record.id,
      issuedAt: context.now.toISOString(),
    };
    await context.store.put(certificatePath(serial), {
      ...record,
      caPublicKey: signer.record.publicKey,
    });
  }
  context.logger.info(
    {
      mount: context.mount,
      role: roleName,
      serial,
      certType: plan.type,
      caKeyId: signer.record.id,
      stored: !role.noStore,
    },
    "SSH certificate signed",
  );
  return { serialNumber: serial, signedKey };
}

function secondsToIso(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString();
}

/** Signs a client's public key under role `roleName`. */
export async function signPublicKey(
  context: SigningContext,
  roleName: string,
  request: SignRequest,
  identity: RequesterIdentity,
): Promise<SignResult> {
  const role = await loadRole(context.store, roleName);
  if (request.publicKey === undefined || request.publicKey === "") {
    throw missingField("public_key");
  }
  const key = parsePublicKeyLine(request.publicKey, "public_key");
  checkCertifiableKey(key, "public_key");
  const plan = planCertificate({ roleName, role, key, request, identity, now: context.now });
  await rejectRevokedKey(context.revocations, key, "public_key");
  return certify(context, roleName, role, key, plan);
}

/**
 * Returns the RSA size to generate when the request names none: the role's
 * first exact size, its minimum when that is larger than the default, or
 * the default.
 */
function defaultRsaBits(role: SshRole): number {
  const rule = keyLengthRule(role, "ssh-rsa");
  if (Array.isArray(rule)) return rule[0] as number;
  return rule !== undefined && rule > DEFAULT_ISSUE_RSA_BITS ? rule : DEFAULT_ISSUE_RSA_BITS;
}

const PRIVATE_KEY_TYPES: Record<string, string> = {
  "ssh-rsa": "rsa",
  "ssh-ed25519": "ed25519",
};

/**
 * Generates a key pair, signs its public key under role `roleName`, and
 * returns the private key with the certificate. The private key is never
 * stored. The policy is checked before the key is generated.
 */
export async function issueKeyPair(
  context: SigningContext,
  roleName: string,
  request: IssueRequest,
  identity: RequesterIdentity,
): Promise<IssueResult> {
  const role = await loadRole(context.store, roleName);
  const requestedType = request.keyType ?? "rsa";
  const isRsa = requestedType === "rsa" || requestedType === "ssh-rsa";
  const bits =
    isRsa && (request.keyBits === undefined || request.keyBits === 0)
      ? defaultRsaBits(role)
      : request.keyBits;
  const spec = resolveKeySpec(requestedType, bits, DEFAULT_ISSUE_RSA_BITS, {
    type: "key_type",
    bits: "key_bits",
  });
  // Check the policy with a stand-in key of the requested type and size first,
  // so a rejected request costs no key generation.
  const standIn: SshPublicKey = {
    algorithm: spec.algorithm,
    bits: spec.bits,
    blob: Buffer.alloc(0),
    keyObject: undefined,
  };
  planCertificate({ roleName, role, key: standIn, request, identity, now: context.now });
  await context.ca.signer(request.certType === "host" ? "host" : "user");

  const pair = await generateSshKeyPair(spec);
  const { algorithm, blob, bits: keyBits } = publicKeyBlob(pair.publicKey);
  const key: SshPublicKey = { algorithm, blob, bits: keyBits, keyObject: pair.publicKey };
  const plan = planCertificate({ roleName, role, key, request, identity, now: context.now });
  const signed = await certify(context, roleName, role, key, plan);
  return {
    ...signed,
    privateKey: encodeOpensshPrivateKey(pair.privateKey),
    privateKeyType: PRIVATE_KEY_TYPES[algorithm] ?? "ec",
  };
}

/** A stored certificate record, with the signing CA's public key kept for the KRL. */
export type StoredCertificate = CertificateRecord & { caPublicKey: string };

export function toCertificateInfo(
  record: StoredCertificate,
): CertificateRecord & { revoked: boolean } {
  const { caPublicKey: _caPublicKey, ...info } = record;
  return { ...info, revoked: record.revokedAt !== undefined };
}
