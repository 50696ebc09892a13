import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { registerWifiRoutes } from "../../engines/wifi/index.ts";
import { KeywardError } from "../../errors.ts";
import { constrainToEngine } from "../engine-constraint.ts";

/** Serves every Wi-Fi mount from one set of routes under `/v1/:mount`, with the `engine: "wifi"` constraint. */
export async function registerWifiMounts(app: FastifyInstance, keyward: Keyward) {
  const serviceFor = (request: FastifyRequest) => {
    const { mount } = request.params as { mount: string };
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const service = keyward.wifi(mount);
    if (!service) {
      throw new KeywardError("route_not_found", `no Wi-Fi engine is mounted at "${mount}/"`);
    }
    return service;
  };

  // An enterprise network's CA chain comes from the issuer of its PKI mount, issuing CA first.
  const loadChain = async (pkiMount: string, issuer: string): Promise<string> => {
    const pki = keyward.pki(pkiMount);
    if (!pki) {
      throw new KeywardError("not_found", `no PKI engine is mounted at "${pkiMount}/"`, {
        field: "pki_mount",
      });
    }
    const record = await pki.issuers.resolve(issuer, "pki_issuer");
    return (await pki.issuers.chain(record)).join("\n");
  };

  await app.register(
    async (scope) => {
      constrainToEngine(scope, "wifi");
      await registerWifiRoutes(scope, serviceFor, loadChain);
    },
    { prefix: "/v1/:mount" },
  );
}
