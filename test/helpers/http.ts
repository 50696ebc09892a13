/**
 * Sends a JSON request to `/v1/{path}` of the Keyward server at `address`,
 * with `token` as the Vault token when given, and returns the status and
 * the parsed body (undefined when empty).
 */
export async function callServer(
  address: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${address}/v1/${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { "x-vault-token": token }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}
