/**
 * OpenSSH certificates, encoded by hand as OpenSSH's PROTOCOL.certkeys
 * describes them (the "-cert-v01@openssh.com" key types). We found no
 * maintained JavaScript library that writes this format, so Keyward builds
 * it from the SSH wire primitives in wire.ts.
 *
 * A certificate contains, in order:
 * - string certificate key type and string nonce;
 * - the public key's own fields, which for every supported type are the
 *   key blob after its type name;
 * - uint64 serial, uint32 type, string key id, string valid principals,
 *   uint64 valid after and uint64 valid before;
 * - string critical options, string extensions and string reserved;
 * - string signature key, and string signature over everything before it.
 */
import { KeywardError } from "../../errors.ts";
import {
  type KeyAlgorithm,
  parsePublicKeyBlob,
  type SshPublicKey,
  SUPPORTED_KEY_ALGORITHMS,
  splitPublicKeyLine,
} from "./public-keys.ts";
import { SshReader, SshWriter, WireFormatError } from "./wire.ts";

export const CERTIFICATE_TYPES = ["user", "host"] as const;
export type CertificateType = (typeof CERTIFICATE_TYPES)[number];

/** The uint32 certificate type codes (SSH2_CERT_TYPE_USER and SSH2_CERT_TYPE_HOST). */
const TYPE_CODES: Record<CertificateType, number> = { user: 1, host: 2 };

/** `valid_before` of a certificate that never expires: the largest uint64. */
export const VALID_FOREVER = 0xffff_ffff_ffff_ffffn;

/** Nonce length; OpenSSH's own `ssh-keygen` uses 32 random bytes. */
export const NONCE_BYTES = 32;

const CERT_SUFFIX = "-cert-v01@openssh.com";

/** Returns the certificate key type for a plain key type, such as `ssh-ed25519-cert-v01@openssh.com`. */
export function certificateKeyType(algorithm: KeyAlgorithm): string {
  return `${algorithm}${CERT_SUFFIX}`;
}

/** The fields of a certificate, apart from its signature. */
export interface CertificateFields {
  /** The certified public key: its algorithm and plain key blob. */
  key: { algorithm: KeyAlgorithm; blob: Buffer };
  nonce: Buffer;
  serial: bigint;
  type: CertificateType;
  keyId: string;
  /** Users or host names the certificate is valid for; empty means any, so issuance forbids it unless a role allows it. */
  principals: string[];
  /** Seconds since the Unix epoch; valid from this time on. */
  validAfter: bigint;
  /** Seconds since the Unix epoch; valid before this time. `VALID_FOREVER` for no expiry. */
  validBefore: bigint;
  /** Option name to value; an empty value is a flag option. */
  criticalOptions: Readonly<Record<string, string>>;
  /** Extension name to value; an empty value is a flag extension. */
  extensions: Readonly<Record<string, string>>;
}

/**
 * Encodes options or extensions: each as string name and string data,
 * sorted by name in byte order, as OpenSSH requires. A flag's data is the
 * empty string. A value is itself encoded as a string inside the data, so
 * force-command and source-address carry an inner string.
 */
export function encodeOptions(options: Readonly<Record<string, string>>): Buffer {
  const names = Object.keys(options).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const writer = new SshWriter();
  for (const name of names) {
    const value = options[name] as string;
    writer.string(name);
    writer.string(value === "" ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer());
  }
  return writer.toBuffer();
}

function decodeOptions(bytes: Buffer): Record<string, string> {
  const reader = new SshReader(bytes);
  const options: Record<string, string> = {};
  let previous: string | undefined;
  while (reader.remaining > 0) {
    const name = reader.text();
    const data = reader.string();
    if (previous !== undefined && Buffer.compare(Buffer.from(previous), Buffer.from(name)) >= 0) {
      throw new WireFormatError("options are not sorted or repeat a name");
    }
    previous = name;
    if (data.length === 0) {
      options[name] = "";
    } else {
      const inner = new SshReader(data);
      options[name] = inner.text();
      inner.end();
    }
  }
  return options;
}

/** Returns the part of a certificate that the CA signs: every field up to and including the signature key. */
export function encodeToBeSigned(fields: CertificateFields, signatureKeyBlob: Uint8Array): Buffer {
  const plain = new SshReader(fields.key.blob);
  plain.string();
  const keyFields = fields.key.blob.subarray(fields.key.blob.length - plain.remaining);

  const principals = new SshWriter();
  for (const principal of fields.principals) principals.string(principal);

  return new SshWriter()
    .string(certificateKeyType(fields.key.algorithm))
    .string(fields.nonce)
    .raw(keyFields)
    .uint64(fields.serial)
    .uint32(TYPE_CODES[fields.type])
    .string(fields.keyId)
    .string(principals.toBuffer())
    .uint64(fields.validAfter)
    .uint64(fields.validBefore)
    .string(encodeOptions(fields.criticalOptions))
    .string(encodeOptions(fields.extensions))
    .string("")
    .string(signatureKeyBlob)
    .toBuffer();
}

/**
 * Builds a signed certificate blob. `sign` returns the CA's signature over
 * its input in SSH wire format (string algorithm, string signature).
 */
export function encodeCertificate(
  fields: CertificateFields,
  signatureKeyBlob: Uint8Array,
  sign: (data: Buffer) => Buffer,
): Buffer {
  const toBeSigned = encodeToBeSigned(fields, signatureKeyBlob);
  return new SshWriter().raw(toBeSigned).string(sign(toBeSigned)).toBuffer();
}

/** A decoded certificate: its fields, the CA key that signed it, and the signed bytes. */
export interface DecodedCertificate extends CertificateFields {
  signatureKey: SshPublicKey;
  signature: Buffer;
  /** The bytes the signature covers. */
  signedData: Buffer;
}

/**
 * Decodes a certificate blob. Throws `invalid_field` naming `field` when it
 * is malformed; does not verify the signature (see `verifySsh`).
 */
export function decodeCertificate(blob: Uint8Array, field: string): DecodedCertificate {
  const reader = new SshReader(blob);
  try {
    const certType = reader.text();
    const algorithm = certType.endsWith(CERT_SUFFIX)
      ? certType.slice(0, -CERT_SUFFIX.length)
      : undefined;
    if (
      algorithm === undefined ||
      !(SUPPORTED_KEY_ALGORITHMS as readonly string[]).includes(algorithm)
    ) {
      throw new KeywardError("unsupported_key_type", `"${field}": unsupported certificate type`, {
        field,
      });
    }
    const nonce = reader.string();
    const keyStart = blob.byteLength - reader.remaining;
    skipKeyFields(algorithm as KeyAlgorithm, reader);
    const keyFields = Buffer.from(blob).subarray(keyStart, blob.byteLength - reader.remaining);
    const keyBlob = Buffer.concat([new SshWriter().string(algorithm).toBuffer(), keyFields]);
    const key = parsePublicKeyBlob(keyBlob, field);

    const serial = reader.uint64();
    const typeCode = reader.uint32();
    const type = CERTIFICATE_TYPES.find((name) => TYPE_CODES[name] === typeCode);
    if (type === undefined) throw new WireFormatError("unknown certificate type code");
    const keyId = reader.text();
    const principalReader = new SshReader(reader.string());
    const principals: string[] = [];
    while (principalReader.remaining > 0) principals.push(principalReader.text());
    const validAfter = reader.uint64();
    const validBefore = reader.uint64();
    const criticalOptions = decodeOptions(reader.string());
    const extensions = decodeOptions(reader.string());
    reader.string();
    const signatureKey = parsePublicKeyBlob(reader.string(), field);
    const signedData = Buffer.from(reader.consumed);
    const signature = reader.string();
    reader.end();
    return {
      key: { algorithm: key.algorithm as KeyAlgorithm, blob: key.blob },
      nonce,
      serial,
      type,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      extensions,
      signatureKey,
      signature,
      signedData,
    };
  } catch (error) {
    if (error instanceof KeywardError) throw error;
    throw new KeywardError("invalid_field", `"${field}" is not a valid OpenSSH certificate`, {
      field,
      cause: error,
    });
  }
}

function skipKeyFields(algorithm: KeyAlgorithm, reader: SshReader): void {
  if (algorithm === "ssh-ed25519") {
    reader.string();
  } else if (algorithm === "ssh-rsa") {
    reader.string();
    reader.string();
  } else {
    reader.string();
    reader.string();
  }
}

/** Decodes a one-line certificate (`<cert type> <base64> [comment]`), as `signed_key` returns it. */
export function decodeCertificateLine(text: string, field: string): DecodedCertificate {
  const line = splitPublicKeyLine(text, field);
  const certificate = decodeCertificate(line.blob, field);
  if (line.type !== certificateKeyType(certificate.key.algorithm)) {
    throw new KeywardError(
      "invalid_field",
      `"${field}": the type before the certificate does not match its own type`,
      { field },
    );
  }
  return certificate;
}
