import assert from "node:assert/strict";
import { constants, createCipheriv, publicEncrypt, randomBytes } from "node:crypto";
import type { TestApp } from "../../helpers/app.ts";

/** The RFC 5649 alternative initial value that AES-KWP starts from. */
const KWP_IV = Buffer.from("A65959A6", "hex");

/** Status and parsed JSON body of one API response. */
export interface ApiResponse {
  status: number;
  json: ReturnType<typeof JSON.parse>;
}

/** Sends one request through inject() with the root token and parses the body. */
export async function callApi(
  t: TestApp,
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: object,
): Promise<ApiResponse> {
  const response = await t.request({
    method,
    url: `/v1/${path}`,
    ...(body === undefined ? {} : { payload: body }),
  });
  return {
    status: response.statusCode,
    json: response.body === "" ? {} : JSON.parse(response.body),
  };
}

/** Sends one request and asserts a 2xx status. */
export async function okApi(
  t: TestApp,
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: object,
): Promise<ReturnType<typeof JSON.parse>> {
  const response = await callApi(t, method, path, body);
  assert.ok(response.status < 300, `${path}: ${response.status} ${JSON.stringify(response.json)}`);
  return response.json;
}

/**
 * Wraps `target` for import under the wrapping key `publicKeyPem`: a fresh
 * AES-256 key with RSA-OAEP (SHA-256), then `target` with AES-KWP under it.
 */
export function wrapForImport(publicKeyPem: string, target: Buffer): string {
  const ephemeral = randomBytes(32);
  const encryptedEphemeral = publicEncrypt(
    { key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    ephemeral,
  );
  const cipher = createCipheriv("id-aes256-wrap-pad", ephemeral, KWP_IV);
  const wrappedTarget = Buffer.concat([cipher.update(target), cipher.final()]);
  return Buffer.concat([encryptedEphemeral, wrappedTarget]).toString("base64");
}
