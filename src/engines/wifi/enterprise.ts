import { KeywardError } from "../../errors.ts";
import { renderFreeradiusEapTls } from "./freeradius.ts";
import type { NetworkRecord } from "./types.ts";

/** Returns the PEM CA chain of `issuer` (a name, an id or `default`) on PKI mount `pkiMount`, issuing CA first. */
export type CaChainLoader = (pkiMount: string, issuer: string) => Promise<string>;

/** The RADIUS server's file paths and CRL settings, as the route's query parameters carry them. */
export interface FreeradiusRequest {
  certificateFile?: string;
  privateKeyFile?: string;
  caFile?: string;
  caPath?: string;
  checkCrl?: boolean;
  caPathReloadInterval?: number;
}

/**
 * Renders the FreeRADIUS EAP-TLS module of an enterprise network, trusting
 * the CA chain of the network's `pki_mount` and issuer. Throws
 * `invalid_state` for a network that is not enterprise or has no
 * `pki_mount`, and the renderer's `missing_field` or `invalid_field` for a
 * bad path.
 */
export async function renderNetworkFreeradius(
  network: NetworkRecord,
  request: FreeradiusRequest,
  loadChain: CaChainLoader,
): Promise<string> {
  if (network.security !== "wpa2-enterprise" && network.security !== "wpa3-enterprise") {
    throw new KeywardError(
      "invalid_state",
      `network "${network.name}" is ${network.security}; FreeRADIUS serves only enterprise networks`,
      { field: "security" },
    );
  }
  if (!network.eapTls) {
    throw new KeywardError(
      "invalid_state",
      `network "${network.name}" has no "pki_mount" to take the CA chain from`,
      { field: "pki_mount" },
    );
  }
  const caChain = await loadChain(network.eapTls.pkiMount, network.eapTls.issuer);
  return renderFreeradiusEapTls({
    caChain,
    certificateFile: request.certificateFile as string,
    privateKeyFile: request.privateKeyFile as string,
    caFile: request.caFile as string,
    ...(request.caPath === undefined ? {} : { caPath: request.caPath }),
    ...(request.checkCrl === undefined ? {} : { checkCrl: request.checkCrl }),
    ...(request.caPathReloadInterval === undefined
      ? {}
      : { caPathReloadIntervalSeconds: request.caPathReloadInterval }),
  });
}
