// Generates the number of P-256 key pairs given as the first argument with
// generateKeys, exports each as JWK, and prints that number.
// key-generation.test.ts runs it with a 1 MB semi-space
// (`--max-semi-space-size=1`), so garbage collections interrupt the exports often.
import { generateKeys } from "../../src/crypto/key-generation.ts";

const count = Number(process.argv[2]);
for (let index = 0; index < count; index += 1) {
  const { privateKey, publicKey } = generateKeys({ type: "ec", namedCurve: "P-256" });
  privateKey.export({ format: "jwk" });
  publicKey.export({ format: "jwk" });
}
console.log(count);
