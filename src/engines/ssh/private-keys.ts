import { createPrivateKey, type JsonWebKey, type KeyObject, randomBytes } from "node:crypto";
import { checkKeyObject, checkKeyPair } from "../../crypto/key-safety.ts";
import { KeywardError } from "../../errors.ts";
import {
  ECDSA_CURVES,
  type EcdsaCurve,
  type KeyAlgorithm,
  leftPad,
  publicKeyBlob,
  SUPPORTED_KEY_ALGORITHMS,
  unsupportedKeyType,
} from "./public-keys.ts";
import { SshReader, SshWriter, WireFormatError } from "./wire.ts";

/**
 * Private keys in OpenSSH's own file format ("openssh-key-v1", described in
 * OpenSSH's PROTOCOL.key), unencrypted, as `ssh-keygen -N ""` writes them,
 * and PEM keys that Node reads (PKCS#8, PKCS#1, SEC 1).
 */

const MAGIC = Buffer.from("openssh-key-v1\0", "latin1");
const BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END = "-----END OPENSSH PRIVATE KEY-----";
/** The private section is padded to the cipher block size, 8 for the "none" cipher. */
const BLOCK_SIZE = 8;
/** Node's names of the PEM key types that SSH can use; DSA, RSA-PSS, X25519 and the like are rejected. */
const PEM_KEY_TYPES = new Set(["ed25519", "rsa", "ec"]);

/** Returns `privateKey` as an unencrypted OpenSSH private key file. */
export function encodeOpensshPrivateKey(privateKey: KeyObject, comment = ""): string {
  const { algorithm, blob } = publicKeyBlob(privateKey);
  const jwk = privateKey.export({ format: "jwk" }) as JsonWebKey;
  const b64 = (value: string | undefined) => Buffer.from(value ?? "", "base64url");

  const secret = new SshWriter();
  const check = randomBytes(4).readUInt32BE();
  secret.uint32(check).uint32(check).string(algorithm);
  if (algorithm === "ssh-ed25519") {
    const x = b64(jwk.x);
    secret.string(x).string(Buffer.concat([b64(jwk.d), x]));
  } else if (algorithm === "ssh-rsa") {
    secret.mpint(b64(jwk.n)).mpint(b64(jwk.e)).mpint(b64(jwk.d));
    secret.mpint(b64(jwk.qi)).mpint(b64(jwk.p)).mpint(b64(jwk.q));
  } else {
    const curve = ECDSA_CURVES[algorithm] as EcdsaCurve;
    const point = Buffer.concat([
      Buffer.from([4]),
      leftPad(b64(jwk.x), curve.size),
      leftPad(b64(jwk.y), curve.size),
    ]);
    secret.string(curve.sshName).string(point).mpint(b64(jwk.d));
  }
  secret.string(comment);
  let section = secret.toBuffer();
  const padding = (BLOCK_SIZE - (section.length % BLOCK_SIZE)) % BLOCK_SIZE;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);

  const body = new SshWriter()
    .raw(MAGIC)
    .string("none")
    .string("none")
    .string("")
    .uint32(1)
    .string(blob)
    .string(section)
    .toBuffer();
  const lines = body.toString("base64").match(/.{1,70}/g) ?? [];
  return `${BEGIN}\n${lines.join("\n")}\n${END}\n`;
}

function invalidPrivateKey(field: string, reason: string, cause?: unknown): KeywardError {
  return new KeywardError("invalid_field", `"${field}" is not a usable private key: ${reason}`, {
    field,
    cause,
  });
}

/**
 * Reads a private key in OpenSSH format (unencrypted) or PEM and checks
 * that its public half belongs to its private half. Throws `invalid_field`
 * naming `field` for anything else, including encrypted keys and
 * mismatched halves, and `unsupported_key_type` for DSA and other key
 * types an SSH CA cannot use. Messages never include key bytes.
 */
export function parsePrivateKey(text: string, field: string): KeyObject {
  const key = readPrivateKey(text, field);
  try {
    checkKeyPair(key);
  } catch (error) {
    // OpenSSL loads an EC key whose stored point belongs to another scalar.
    // A CA with it would publish a public key that verifies no certificate.
    throw invalidPrivateKey(field, "the private key does not match its own public key", error);
  }
  return key;
}

function readPrivateKey(text: string, field: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith(BEGIN)) return parseOpensshPrivateKey(trimmed, field);
  if (trimmed.includes("ENCRYPTED")) {
    throw invalidPrivateKey(field, "encrypted keys are not accepted; send it unencrypted");
  }
  let key: KeyObject;
  try {
    key = checkKeyObject(createPrivateKey({ key: trimmed, format: "pem" }));
  } catch (error) {
    throw invalidPrivateKey(field, "expected an OpenSSH or PEM private key", error);
  }
  if (!PEM_KEY_TYPES.has(key.asymmetricKeyType ?? "")) {
    throw unsupportedKeyType(field, key.asymmetricKeyType ?? "unknown");
  }
  return key;
}

function parseOpensshPrivateKey(text: string, field: string): KeyObject {
  if (!text.endsWith(END)) throw invalidPrivateKey(field, "the END line is missing");
  const body = Buffer.from(text.slice(BEGIN.length, -END.length).replace(/\s+/g, ""), "base64");
  try {
    if (!body.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new WireFormatError("not an openssh-key-v1 key");
    }
    const reader = new SshReader(body.subarray(MAGIC.length));
    const cipher = reader.text();
    const kdf = reader.text();
    reader.string();
    if (cipher !== "none" || kdf !== "none") {
      throw invalidPrivateKey(field, "encrypted keys are not accepted; send it unencrypted");
    }
    if (reader.uint32() !== 1) throw new WireFormatError("the file must hold exactly one key");
    reader.string();
    const section = new SshReader(reader.string());
    reader.end();
    const check = section.uint32();
    if (section.uint32() !== check) {
      throw new WireFormatError("the check values differ");
    }
    return checkKeyObject(
      createPrivateKey({ key: readPrivateFields(section, field), format: "jwk" }),
    );
  } catch (error) {
    if (error instanceof KeywardError) throw error;
    throw invalidPrivateKey(field, "the OpenSSH key is malformed", error);
  }
}

/** Reads one key's private fields and returns them as a JWK; `unsupported_key_type` naming `field` for DSA and other types. */
function readPrivateFields(section: SshReader, field: string): JsonWebKey {
  const algorithm = section.text();
  if (!(SUPPORTED_KEY_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw unsupportedKeyType(field, algorithm);
  }
  const b64 = (bytes: Buffer) => bytes.toString("base64url");
  if (algorithm === "ssh-ed25519") {
    const x = section.string();
    const pair = section.string();
    if (x.length !== 32 || pair.length !== 64) throw new WireFormatError("bad Ed25519 key size");
    return { kty: "OKP", crv: "Ed25519", x: b64(x), d: b64(pair.subarray(0, 32)) };
  }
  if (algorithm === "ssh-rsa") {
    const n = section.positiveMpint();
    const e = section.positiveMpint();
    const d = section.positiveMpint();
    const qi = section.positiveMpint();
    const p = section.positiveMpint();
    const q = section.positiveMpint();
    const toBig = (bytes: Buffer) => BigInt(`0x${bytes.toString("hex") || "0"}`);
    const toBytes = (value: bigint) => {
      const hex = value.toString(16);
      return Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex");
    };
    const dp = toBig(d) % (toBig(p) - 1n);
    const dq = toBig(d) % (toBig(q) - 1n);
    return {
      kty: "RSA",
      n: b64(n),
      e: b64(e),
      d: b64(d),
      p: b64(p),
      q: b64(q),
      dp: b64(toBytes(dp)),
      dq: b64(toBytes(dq)),
      qi: b64(qi),
    };
  }
  const curve = ECDSA_CURVES[algorithm as KeyAlgorithm] as EcdsaCurve;
  if (section.text() !== curve.sshName) throw new WireFormatError("the curve does not match");
  const point = section.string();
  const d = section.positiveMpint();
  if (point.length !== 1 + 2 * curve.size || point[0] !== 4 || d.length > curve.size) {
    throw new WireFormatError("bad ECDSA key size");
  }
  return {
    kty: "EC",
    crv: curve.jwkName,
    x: b64(point.subarray(1, 1 + curve.size)),
    y: b64(point.subarray(1 + curve.size)),
    d: b64(leftPad(d, curve.size)),
  };
}
