import {
  type DecryptRequest,
  type EncryptRequest,
  formatSignature,
  formatVersionedValue,
  HSM_RSA_OAEP_HASH,
  prepareDecryption,
  prepareEncryption,
  prepareSignature,
  rsaOaepEncryptVersion,
  type SignRequest,
  type VersionMaterial,
} from "../../../keys/index.ts";
import type { HsmObjectRef, KeyType, ManagedKey } from "../../../keys/types.ts";
import type { OperationContext } from "../access.ts";
import type { EncryptResult, SignResult } from "../types.ts";
import { hsmObjectOf, requireHsm } from "./access.ts";

/*
 * Transit operations on HSM-held keys. The key model checks each request
 * exactly as for a key held in storage (`prepareEncryption` and the like),
 * and only the cryptography runs in the HSM, so the results have the same
 * `keyward:v<N>:` format.
 */

/**
 * Encrypts with an HSM-held key; the ciphertext has the format of a
 * software key's. An RSA key encrypts with its public key in Keyward
 * (RSA-OAEP with `HSM_RSA_OAEP_HASH`), so that needs no HSM.
 */
export async function hsmEncrypt(
  context: OperationContext,
  key: ManagedKey,
  request: EncryptRequest,
): Promise<EncryptResult> {
  const { version, params } = prepareEncryption(key, request, context.now);
  let payload: Buffer;
  if (isRsaType(key.type)) {
    payload = rsaOaepEncryptVersion(key.type, version, params, HSM_RSA_OAEP_HASH);
  } else {
    const objects = await requireHsm(context.hsm, key).objects();
    payload = await objects.encrypt(key.type, hsmObjectOf(key, version), params);
  }
  return {
    ciphertext: formatVersionedValue(version.version, payload),
    keyVersion: version.version,
  };
}

/** Decrypts with an HSM-held key; the caller zeroes the plaintext once it is sent or used. */
export async function hsmDecrypt(
  context: OperationContext,
  key: ManagedKey,
  request: DecryptRequest,
): Promise<Buffer> {
  const { version, params } = prepareDecryption(key, request, context.now);
  const objects = await requireHsm(context.hsm, key).objects();
  return objects.decrypt(key.type, hsmObjectOf(key, version), params);
}

function isRsaType(type: KeyType): boolean {
  return type === "rsa-2048" || type === "rsa-3072" || type === "rsa-4096";
}

/** Signs with an HSM-held key; the signature has the format of a software key's. */
export async function hsmSign(
  context: OperationContext,
  key: ManagedKey,
  request: SignRequest,
): Promise<SignResult> {
  const { version, params } = prepareSignature(key, request, context.now);
  const objects = await requireHsm(context.hsm, key).objects();
  const signature = await objects.sign(
    key.type,
    hsmObjectOf(key, version),
    params,
    version.publicKeyPem,
  );
  return { signature: formatSignature(version, signature, params), keyVersion: version.version };
}

/**
 * Generates the HSM objects of version `version` of key `name` and returns
 * the version's material. Throws `hsm_not_configured` without an HSM.
 */
export async function generateHsmVersion(
  context: Pick<OperationContext, "hsm">,
  key: { name: string; type: KeyType },
  version: number,
): Promise<VersionMaterial> {
  const hsm = requireHsm(context.hsm);
  const objects = await hsm.objects();
  return objects.generate(key.type, hsm.label(key.name, version));
}

/**
 * Destroys HSM objects a change created that did not end up in the stored
 * key, such as those of a rotation whose write failed or lost to another
 * node's change. `stored` is the key as stored afterwards, if any.
 */
export async function discardUnused(
  context: Pick<OperationContext, "hsm" | "logger" | "mount">,
  created: readonly HsmObjectRef[],
  stored: ManagedKey | undefined,
): Promise<void> {
  if (created.length === 0 || context.hsm === undefined) return;
  const kept = new Set(
    Object.values(stored?.versions ?? {}).flatMap((version) =>
      version.hsmObject === undefined ? [] : [version.hsmObject.id],
    ),
  );
  const unused = created.filter((reference) => !kept.has(reference.id));
  await context.hsm.discard(unused, context.logger, {
    mount: context.mount,
    key: stored?.name,
    reason: "created for a change that was not stored",
  });
}

/**
 * Destroys the HSM objects of versions a stored change removed (a trim, a
 * deletion), or of every version of a key moved to `destroyed`. Failures
 * are logged with the labels left behind and not thrown, because the key
 * change is already stored.
 */
export async function destroyHsmObjects(
  context: Pick<OperationContext, "hsm" | "logger" | "mount">,
  references: readonly HsmObjectRef[],
  name: string,
  reason: string,
): Promise<void> {
  if (references.length === 0) return;
  const fields = { mount: context.mount, key: name, reason };
  if (context.hsm === undefined) {
    context.logger.error(
      { ...fields, hsmObjects: references },
      "HSM key objects were not destroyed because this server has no HSM configured: delete them with the HSM's own tools",
    );
    return;
  }
  await context.hsm.discard(references, context.logger, fields);
}
