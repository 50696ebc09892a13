/**
 * Shared setup of the race tests: a KMIP credential of the test node,
 * and whole request messages (batches) sent over mutual TLS.
 */
import assert from "node:assert/strict";
import type { KmipItem, StructureItem } from "../../../../src/kmip/item.ts";
import { children, enumItem } from "../../../../src/kmip/server/items.ts";
import { encodeTtlv } from "../../../../src/kmip/ttlv.ts";
import { requestMessage } from "../helpers.ts";
import { type ClientCredential, exchangeTls } from "../server-helpers.ts";
import type { TestNode } from "../transit-rotation-helpers.ts";

const EVERY_KMIP_OPERATION = `
path "kmip/*" { capabilities = ["create", "read", "update", "delete", "list"] }
`;

/** Makes a role allowed every KMIP operation and returns a client credential of it. */
export async function issueCredential(node: TestNode, role: string): Promise<ClientCredential> {
  const policy = await node.api("PUT", `sys/policies/acl/${role}`, {
    policy: EVERY_KMIP_OPERATION,
  });
  assert.equal(policy.statusCode, 204, policy.body);
  const created = await node.api("POST", `sys/kmip/roles/${role}`, { token_policies: [role] });
  assert.equal(created.statusCode, 204, created.body);
  const generated = await node.api("POST", `sys/kmip/roles/${role}/credential/generate`, {});
  assert.equal(generated.statusCode, 200, generated.body);
  const ca = await node.api("GET", "sys/kmip/ca/pem");
  assert.equal(ca.statusCode, 200, ca.body);
  const data = generated.json().data;
  return { cert: data.certificate, key: data.private_key, ca: ca.body };
}

/**
 * Sends one request message with several Batch Items over mutual TLS and
 * returns the response's Batch Items. `continuation` sets the Batch Error
 * Continuation Option of the header.
 */
export async function sendBatch(
  node: TestNode,
  credential: ClientCredential,
  items: readonly (readonly [string, readonly KmipItem[]])[],
  continuation: "Continue" | "Stop" | "Undo",
): Promise<StructureItem[]> {
  const message = requestMessage([2, 1], items, [
    enumItem("BatchErrorContinuationOption", continuation),
  ]);
  const response = await exchangeTls(node.kmipPort, credential, encodeTtlv(message));
  return children(response, "BatchItem") as StructureItem[];
}
