/**
 * WireGuard configuration rendering beside a bare string-building baseline.
 *
 * Builds a full-mesh network of N peers (default 1,000) in an in-process
 * WireGuard service over a real SQLite barrier, then renders peer
 * configurations round robin for a fixed time and prints renders per
 * second. The baseline builds the same text with template strings from
 * values computed in advance (public keys, preshared keys, addresses). The
 * ratio therefore shows what Keyward adds: reading the network record
 * through the barrier, deriving one preshared key per listed peer with
 * HMAC-SHA256 and computing the configuration version.
 *
 * Usage: npx tsx bench/wireguard.ts [--peers N] [--seconds S]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateKeyPair, WireguardService } from "../src/engines/wireguard/index.ts";
import { createSealManager } from "../src/seal/seal-manager.ts";
import { openSqliteStorage } from "../src/storage/index.ts";

const { values } = parseArgs({
  options: {
    peers: { type: "string", default: "1000" },
    seconds: { type: "string", default: "5" },
  },
});
const peerCount = Number(values.peers);
const seconds = Number(values.seconds);
if (!Number.isInteger(peerCount) || peerCount < 2 || peerCount > 65_000) {
  throw new Error("--peers must be an integer from 2 to 65000");
}

/** Calls `render(i)` with i = 0, 1, 2, … for `seconds` and returns calls per second. */
async function measure(render: (index: number) => unknown | Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let count = 0;
  const started = performance.now();
  while (performance.now() < end) {
    await render(count % peerCount);
    count += 1;
  }
  return count / ((performance.now() - started) / 1000);
}

const dir = mkdtempSync(join(tmpdir(), "keyward-bench-wg-"));
try {
  const storage = await openSqliteStorage({ path: join(dir, "keyward.db") });
  const seal = createSealManager(storage);
  const init = await seal.init({ shares: 1, threshold: 1 });
  await seal.submitUnsealShare(init.keysHex[0] as string);
  const service = new WireguardService({ barrier: seal.barrier, mount: "wireguard" });

  await service.writeNetwork("mesh", {
    addressRanges: ["10.0.0.0/16", "fd00:100::/64"],
    persistentKeepalive: 25,
  });
  const names = Array.from(
    { length: peerCount },
    (_, index) => `peer-${String(index).padStart(5, "0")}`,
  );
  const setupStarted = performance.now();
  for (const [index, name] of names.entries()) {
    await service.writePeer("mesh", name, {
      publicKey: generateKeyPair().publicKey,
      endpoint: `192.0.2.${(index % 250) + 1}:${51_820 + Math.floor(index / 250)}`,
    });
  }
  const setupSeconds = (performance.now() - setupStarted) / 1000;

  // The baseline's inputs: what each configuration lists, read once from Keyward's own output.
  const sample = await service.renderConfig("mesh", names[0] as string, "wg-quick");
  const peerBlocks = sample.config.split("\n\n").slice(1);
  const parsed = peerBlocks.map((block) => {
    const field = (key: string) => new RegExp(`^${key} = (.*)$`, "m").exec(block)?.[1] ?? "";
    return {
      name: /^# (.*)$/m.exec(block)?.[1] ?? "",
      publicKey: field("PublicKey"),
      presharedKey: field("PresharedKey"),
      allowedIps: field("AllowedIPs"),
      endpoint: field("Endpoint"),
    };
  });
  const baseline = (index: number): string => {
    const lines = [
      `# network mesh, peer ${names[index]}`,
      "[Interface]",
      "PrivateKey = PLACEHOLDER",
      "Address = 10.0.0.1/16, fd00:100::1/64",
      "ListenPort = 51820",
    ];
    for (const peer of parsed) {
      lines.push(
        "",
        "[Peer]",
        `# ${peer.name}`,
        `PublicKey = ${peer.publicKey}`,
        `PresharedKey = ${peer.presharedKey}`,
        `AllowedIPs = ${peer.allowedIps}`,
        `Endpoint = ${peer.endpoint}`,
        "PersistentKeepalive = 25",
      );
    }
    return `${lines.join("\n")}\n`;
  };

  const keyward = await measure((index) => service.renderConfig("mesh", names[index] as string));
  const bare = await measure(baseline);

  console.log(
    `# WireGuard configuration renders, full mesh of ${peerCount} peers (${peerCount - 1} [Peer] sections, ${sample.config.length} bytes each)`,
  );
  console.log(
    `# ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${seconds} s per case`,
  );
  console.log(`# network built in ${setupSeconds.toFixed(1)} s (${peerCount} peer writes)`);
  console.log("| case | renders/s |");
  console.log("| --- | ---: |");
  console.log(`| Keyward renderConfig | ${keyward.toFixed(1)} |`);
  console.log(`| bare string building | ${bare.toFixed(1)} |`);
  console.log(`ratio Keyward / baseline: ${(keyward / bare).toFixed(3)}`);

  await seal.seal();
  await storage.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
