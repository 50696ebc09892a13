import type { Barrier } from "../seal/types.ts";
import type { StorageReader } from "../storage/storage.ts";
import type { ChainStateStore } from "./persistence.ts";
import {
  ChainReader,
  listStoreChains,
  nodeChainPrefix,
  type StoreChain,
  storePrefix,
} from "./sinks/store.ts";
import type { ChainHead } from "./types.ts";
import { type FirstBad, type VerifyResult, verifyAuditLog } from "./verify.ts";

/** The verification of one chain of a store device. */
export type NodeChainResult = VerifyResult & {
  /** The node that writes the chain, or null for the legacy chain written before per-node chains. */
  node: string | null;
};

/** The verification of every chain of a store device, one result per node. */
export interface StoreVerifyResult {
  /** True when every chain verified. */
  ok: boolean;
  /** The store device's path. */
  device: string;
  /** Request and response records verified over all chains. A failed chain counts those before its first bad one. */
  records: number;
  /** Checkpoints verified, counted as `records` is. */
  checkpoints: number;
  /** False when no public key was given, so only the hash chains were checked. */
  signaturesChecked: boolean;
  /** One result per chain: the legacy chain first when there is one, then the nodes by id. */
  nodes: NodeChainResult[];
  /** The first bad record of the first chain that failed, with that chain's node. */
  firstBad?: FirstBad & { node: string | null };
}

/** A chain to verify, with the last record it must reach when that is known. */
export interface ChainToVerify {
  chain: StoreChain;
  /**
   * The last record the chain's writer reported: the running device's head
   * for this node's chain, the head saved at the last checkpoint for
   * another node's chain or the legacy chain.
   */
  expectedHead?: ChainHead;
}

/**
 * Verifies each chain of a store device on its own. A node's chain must
 * name that node in every record. A value that fails the barrier's
 * integrity check ends its chain's verification and is reported as the
 * chain's first bad record, unless an earlier record already failed.
 */
export async function verifyStoreChains(
  reader: StorageReader,
  device: string,
  chains: ChainToVerify[],
  publicKeyPem?: string,
): Promise<StoreVerifyResult> {
  const nodes: NodeChainResult[] = [];
  for (const { chain, expectedHead } of chains) {
    nodes.push({
      node: chain.node,
      ...(await verifyChain(reader, chain, expectedHead, publicKeyPem)),
    });
  }
  const failed = nodes.find((result) => !result.ok);
  return {
    ok: failed === undefined,
    device,
    records: nodes.reduce((sum, result) => sum + result.records, 0),
    checkpoints: nodes.reduce((sum, result) => sum + result.checkpoints, 0),
    signaturesChecked: publicKeyPem !== undefined,
    nodes,
    ...(failed === undefined || failed.ok
      ? {}
      : { firstBad: { node: failed.node, ...failed.firstBad } }),
  };
}

async function verifyChain(
  reader: StorageReader,
  chain: StoreChain,
  expectedHead: ChainHead | undefined,
  publicKeyPem: string | undefined,
): Promise<VerifyResult> {
  const chainReader = new ChainReader(reader, chain);
  let linesRead = 0;
  async function* counted(): AsyncGenerator<string> {
    for await (const line of chainReader.lines(true)) {
      linesRead += 1;
      yield line;
    }
  }
  const result = await verifyAuditLog(counted(), publicKeyPem, {
    expectedHead: expectedHead === undefined || expectedHead.seq === 0 ? undefined : expectedHead,
    ...(chain.node === null ? {} : { expectedNode: chain.node }),
  });
  const unreadable = chainReader.unreadable;
  // A failure within the lines read comes before the unreadable value. A
  // failure past them is only the early end that the unreadable value caused.
  if (unreadable === undefined || (!result.ok && result.firstBad.line <= linesRead)) {
    return result;
  }
  return {
    ok: false,
    records: result.records,
    checkpoints: result.checkpoints,
    firstBad: {
      line: linesRead + 1,
      ...(unreadable.seq === undefined ? {} : { seq: unreadable.seq }),
      reason: "altered",
      detail: `the stored value at ${unreadable.key} fails the barrier's integrity check, so it was changed in the storage outside Keyward`,
    },
  };
}

/**
 * Lists the chains of a store device with the head each must reach. Every
 * head is read before the chains are listed, so records written meanwhile
 * come after it. `own` is this node with its running device's head, which
 * is newer than the head it saved. A chain whose records are all gone but
 * whose head was saved is listed too, so its loss is reported.
 */
export async function chainsToVerify(
  barrier: Barrier,
  chainState: ChainStateStore,
  device: string,
  own: { node: string; head: ChainHead | undefined },
): Promise<ChainToVerify[]> {
  const heads = new Map<string | null, ChainHead | undefined>();
  const legacyHead = await chainState.loadLegacy(device);
  if (legacyHead !== undefined) heads.set(null, legacyHead);
  for (const node of await chainState.listNodes(device)) {
    heads.set(node, await chainState.loadOf(device, node));
  }
  if (own.head !== undefined && own.head.seq > 0) heads.set(own.node, own.head);

  const chains = await listStoreChains(barrier, device);
  for (const node of heads.keys()) {
    if (chains.some((chain) => chain.node === node)) continue;
    const prefix = node === null ? storePrefix(device) : nodeChainPrefix(device, node);
    chains.push({ node, prefix });
  }
  chains.sort(compareChains);
  return chains.map((chain) => {
    const expectedHead = heads.get(chain.node);
    return expectedHead === undefined ? { chain } : { chain, expectedHead };
  });
}

/** Orders chains as reports list them: the legacy chain first, then the nodes by id in byte order. */
function compareChains(a: StoreChain, b: StoreChain): number {
  if (a.node === b.node) return 0;
  if (a.node === null) return -1;
  if (b.node === null) return 1;
  return Buffer.compare(Buffer.from(a.node), Buffer.from(b.node));
}
