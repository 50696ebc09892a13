import { parentPort, workerData } from "node:worker_threads";
import { type BarrierKey, encryptBatch, type SeedPlan } from "./pki-seed.ts";

/**
 * A worker thread of `seedCertificates`: it replies to each
 * `{ first, end }` message with the encrypted rows of those certificates,
 * transferring the packed buffers instead of copying them.
 */
const { plan, key } = workerData as { plan: SeedPlan; key: { term: number; key: Uint8Array } };
const barrierKey: BarrierKey = { term: key.term, key: Buffer.from(key.key) };

parentPort!.on("message", ({ first, end }: { first: number; end: number }) => {
  const rows = encryptBatch(plan, barrierKey, first, end);
  parentPort!.postMessage(rows, [rows.values, rows.ends]);
});
