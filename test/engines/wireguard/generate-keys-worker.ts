// Generates the number of WireGuard key pairs given as the first argument
// and prints that number. keys.test.ts runs it with a 1 MB semi-space
// (`--max-semi-space-size=1`), so garbage collections interrupt key
// generation often.
import { generateKeyPair } from "../../../src/engines/wireguard/keys.ts";

const count = Number(process.argv[2]);
for (let index = 0; index < count; index += 1) generateKeyPair();
console.log(count);
