/**
 * Symmetric Encrypt and Decrypt over node:crypto: AES in ECB, CBC, CTR and
 * GCM modes, ChaCha20 and ChaCha20-Poly1305. Without a Block Cipher Mode
 * the default is ECB; without a Padding Method, CBC and ECB use none.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { CryptoParameters } from "../crypto-params.ts";
import { KmipOperationError } from "../errors.ts";

export interface SymmetricInput {
  algorithm: string;
  key: Buffer;
  parameters: CryptoParameters;
  data: Buffer;
  iv: Buffer | undefined;
  aad: Buffer | undefined;
  tag: Buffer | undefined;
}

export interface SymmetricOutput {
  data: Buffer;
  /** The IV the server generated, returned to the client. */
  generatedIv?: Buffer;
  tag?: Buffer;
}

const GCM_TAG_LENGTHS = new Set([12, 13, 14, 15, 16]);

function cryptoFailure(): KmipOperationError {
  return new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
}

function cipherName(algorithm: string, mode: string, keyLength: number): string {
  if (algorithm === "ChaCha20") return "chacha20";
  if (algorithm === "ChaCha20Poly1305") return "chacha20-poly1305";
  if (algorithm === "DES3") {
    if (mode === "ECB") return "des-ede3";
    if (mode === "CBC") return "des-ede3-cbc";
    throw new KmipOperationError(
      "InvalidField",
      `block cipher mode ${mode} is not supported for DES3`,
    );
  }
  if (algorithm !== "AES") {
    throw new KmipOperationError("FeatureNotSupported", `${algorithm} encryption is not supported`);
  }
  const modes: Record<string, string> = { ECB: "ecb", CBC: "cbc", CTR: "ctr", GCM: "gcm" };
  const nodeMode = modes[mode];
  if (nodeMode === undefined) {
    throw new KmipOperationError("InvalidField", `block cipher mode ${mode} is not supported`);
  }
  if (![16, 24, 32].includes(keyLength)) {
    throw new KmipOperationError("InvalidField", "the AES key has an invalid length");
  }
  return `aes-${keyLength * 8}-${nodeMode}`;
}

function ivLengthFor(algorithm: string, mode: string): number {
  if (algorithm === "ChaCha20Poly1305") return 12;
  if (algorithm === "ChaCha20") return 16;
  if (mode === "GCM") return 12;
  if (mode === "ECB") return 0;
  if (algorithm === "DES3") return 8;
  return 16;
}

/**
 * ChaCha20 in OpenSSL takes a 16-byte IV, the last four words of the
 * initial state: block counter, then nonce. A 12-byte nonce (RFC 8439) or an
 * 8-byte nonce (the original 64-bit-counter variant) gets a zero counter.
 */
export function nodeIv(algorithm: string, iv: Buffer): Buffer {
  if (algorithm === "ChaCha20" && (iv.length === 12 || iv.length === 8)) {
    return Buffer.concat([Buffer.alloc(16 - iv.length), iv]);
  }
  return iv;
}

/** Checks the input and chooses the node:crypto cipher, IV and padding; streams.ts uses it too. */
export function setup(input: SymmetricInput, encrypt: boolean) {
  const mode =
    input.parameters.blockCipherMode ??
    (input.algorithm === "AES" || input.algorithm === "DES3" ? "ECB" : "None");
  const name = cipherName(input.algorithm, mode, input.key.length);
  const aead = mode === "GCM" || input.algorithm === "ChaCha20Poly1305";
  const tagLength = input.parameters.tagLength ?? 16;
  if (aead && !GCM_TAG_LENGTHS.has(tagLength)) {
    throw new KmipOperationError("GeneralFailure", `tag length ${tagLength} is not supported`);
  }
  const ivLength = ivLengthFor(input.algorithm, mode);
  let iv = input.iv;
  let generatedIv: Buffer | undefined;
  if (iv === undefined && ivLength > 0) {
    if (!encrypt) throw new KmipOperationError("InvalidMessage", "IV/Counter/Nonce is missing");
    iv = randomBytes(input.parameters.ivLength ? input.parameters.ivLength / 8 : ivLength);
    generatedIv = iv;
  }
  const padding = input.parameters.paddingMethod ?? "None";
  if (padding !== "None" && padding !== "PKCS5") {
    throw new KmipOperationError("InvalidField", `padding method ${padding} is not supported`);
  }
  return {
    name,
    aead,
    tagLength,
    iv: iv ?? null,
    generatedIv,
    pad: padding === "PKCS5" && (mode === "CBC" || mode === "ECB"),
  };
}

export function symmetricEncrypt(input: SymmetricInput): SymmetricOutput {
  const plan = setup(input, true);
  let cipher: ReturnType<typeof createCipheriv>;
  try {
    cipher = createCipheriv(
      plan.name,
      input.key,
      plan.iv === null ? null : nodeIv(input.algorithm, plan.iv),
      plan.aead ? ({ authTagLength: plan.tagLength } as object) : undefined,
    );
  } catch {
    throw new KmipOperationError("InvalidField", "the IV or key does not fit the cipher");
  }
  if (plan.aead && input.aad !== undefined)
    (cipher as unknown as { setAAD(aad: Buffer): void }).setAAD(input.aad);
  cipher.setAutoPadding(plan.pad);
  let data: Buffer;
  try {
    data = Buffer.concat([cipher.update(input.data), cipher.final()]);
  } catch {
    throw new KmipOperationError(
      "InvalidField",
      "the data length does not fit the mode without padding",
    );
  }
  const output: SymmetricOutput = { data };
  if (plan.generatedIv !== undefined) output.generatedIv = plan.generatedIv;
  if (plan.aead) output.tag = (cipher as unknown as { getAuthTag(): Buffer }).getAuthTag();
  return output;
}

export function symmetricDecrypt(input: SymmetricInput): Buffer {
  const plan = setup(input, false);
  if (plan.aead && (input.tag === undefined || input.tag.length !== plan.tagLength)) {
    throw cryptoFailure();
  }
  try {
    const decipher = createDecipheriv(
      plan.name,
      input.key,
      plan.iv === null ? null : nodeIv(input.algorithm, plan.iv),
      plan.aead ? ({ authTagLength: plan.tagLength } as object) : undefined,
    );
    if (plan.aead) {
      const aeadDecipher = decipher as unknown as {
        setAuthTag(tag: Buffer): void;
        setAAD(aad: Buffer): void;
      };
      aeadDecipher.setAuthTag(input.tag!);
      if (input.aad !== undefined) aeadDecipher.setAAD(input.aad);
    }
    decipher.setAutoPadding(plan.pad);
    return Buffer.concat([decipher.update(input.data), decipher.final()]);
  } catch {
    throw cryptoFailure();
  }
}
