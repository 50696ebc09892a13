import { KeywardError } from "../../errors.ts";
import { decodeCertificateLine } from "./certificate.ts";
import { checkKeyId } from "./names.ts";
import { formatPublicKeyLine, parsePublicKeyLine, splitPublicKeyLine } from "./public-keys.ts";
import { normalizeSerial, publicKeyEntry } from "./revocation.ts";
import { certificatePath, type SigningContext, type StoredCertificate } from "./signing.ts";
import type { SshStore } from "./store.ts";
import type { Outcome, RevokeRequest, RevokeResult } from "./types.ts";

const REVOKE_FIELDS = ["serial_number", "key_id", "public_key"] as const;

/**
 * Marks every inventoried certificate that `matches` selects as revoked and
 * returns their serials.
 * NOTE: this reads the whole inventory, so revoking by key ID or public key
 * takes time proportional to the number of stored certificates.
 */
async function markRevoked(
  store: SshStore,
  now: Date,
  matches: (record: StoredCertificate) => boolean,
): Promise<string[]> {
  const marked: string[] = [];
  for (const serial of await store.list("certs")) {
    const record = await store.get<StoredCertificate>(certificatePath(serial));
    if (!record || record.revokedAt !== undefined || !matches(record)) continue;
    await store.put(certificatePath(serial), { ...record, revokedAt: now.toISOString() });
    marked.push(serial);
  }
  return marked;
}

/**
 * Revokes certificates by serial or key ID, or a public key (and with it
 * every certificate for that key), and rebuilds the KRL. Exactly one of the
 * request's fields must be set. Revoking what is already revoked changes
 * nothing and returns a warning.
 */
export async function revoke(
  context: SigningContext,
  request: RevokeRequest,
): Promise<Outcome<RevokeResult>> {
  const setFields = [request.serialNumber, request.keyId, request.publicKey].filter(
    (value) => value !== undefined && value !== "",
  );
  if (setFields.length !== 1) {
    throw new KeywardError("invalid_request", `send exactly one of ${REVOKE_FIELDS.join(", ")}`, {
      field: "serial_number",
    });
  }
  const warnings: string[] = [];
  let revokedBy: string;
  let reason: string;
  let apply: Parameters<typeof context.revocations.change>[1];
  let matches: (record: StoredCertificate) => boolean;

  if (request.serialNumber) {
    const serial = normalizeSerial(request.serialNumber);
    const record = await context.store.get<StoredCertificate>(certificatePath(serial));
    if (!record) {
      warnings.push(
        "the serial is not in the inventory, so it is revoked for certificates of every CA",
      );
    }
    const caPublicKey = record?.caPublicKey ?? "";
    revokedBy = "serial_number";
    reason = `serial ${serial}`;
    apply = (state) => {
      if (
        state.serials.some((entry) => entry.serial === serial && entry.caPublicKey === caPublicKey)
      )
        return false;
      state.serials.push({ serial, caPublicKey });
      return true;
    };
    matches = (candidate) => candidate.serialNumber === serial;
  } else if (request.keyId) {
    const keyId = request.keyId;
    checkKeyId(keyId, "key_id");
    revokedBy = "key_id";
    reason = "key id";
    apply = (state) => {
      if (state.keyIds.includes(keyId)) return false;
      state.keyIds.push(keyId);
      return true;
    };
    matches = (candidate) => candidate.keyId === keyId;
  } else {
    const text = request.publicKey as string;
    if (splitPublicKeyLine(text, "public_key").type.includes("-cert-")) {
      // A certificate: revoke it by serial under the CA that signed it.
      const certificate = decodeCertificateLine(text, "public_key");
      if (certificate.serial === 0n) {
        throw new KeywardError(
          "invalid_field",
          '"public_key" is a certificate with serial 0, which a KRL cannot list; revoke it by key_id instead',
          { field: "public_key" },
        );
      }
      const serial = certificate.serial.toString(16).padStart(16, "0");
      const caPublicKey = formatPublicKeyLine(
        certificate.signatureKey.algorithm,
        certificate.signatureKey.blob,
      );
      revokedBy = "public_key";
      reason = `certificate serial ${serial}`;
      apply = (state) => {
        if (
          state.serials.some(
            (entry) => entry.serial === serial && entry.caPublicKey === caPublicKey,
          )
        )
          return false;
        state.serials.push({ serial, caPublicKey });
        return true;
      };
      matches = (candidate) => candidate.serialNumber === serial;
    } else {
      const key = parsePublicKeyLine(text, "public_key", { allowDsa: true });
      const entry = publicKeyEntry(key.algorithm, key.blob);
      revokedBy = "public_key";
      reason = `public key ${entry.fingerprint}`;
      apply = (state) => {
        if (state.publicKeys.some((existing) => existing.fingerprint === entry.fingerprint))
          return false;
        state.publicKeys.push(entry);
        return true;
      };
      matches = (candidate) => candidate.publicKeyFingerprint === entry.fingerprint;
    }
  }

  const { state, changed } = await context.revocations.change(reason, apply);
  if (!changed) warnings.push("already revoked; the KRL is unchanged");
  const certificatesRevoked = await markRevoked(context.store, context.now, matches);
  return { value: { revokedBy, krlVersion: state.version, certificatesRevoked }, warnings };
}
