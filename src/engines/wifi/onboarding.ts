import QRCode from "qrcode";
import { KeywardError } from "../../errors.ts";
import type { NetworkRecord } from "./types.ts";
import { ssidText } from "./validation.ts";

/** Escapes a `WIFI:` URI value: `\`, `;`, `,`, `"` and `:` get a backslash in front. */
export function escapeWifiUriValue(value: string): string {
  return value.replace(/[\\;,":]/g, (character) => `\\${character}`);
}

/**
 * Builds the `WIFI:` URI that phones read from a QR code:
 * `WIFI:T:<type>;S:<ssid>;P:<passphrase>;H:<true|false>;;`. The type is
 * `WPA` for WPA2 and transition mode and `SAE` for WPA3-only networks.
 * Throws `invalid_state` for an SSID that is not UTF-8 text, because the
 * URI carries text.
 */
export function wifiUri(network: NetworkRecord, passphrase: string, hidden: boolean): string {
  const ssid = ssidText(network.ssidHex);
  if (ssid === undefined) {
    throw new KeywardError(
      "invalid_state",
      `network "${network.name}" has an SSID that is not UTF-8 text, so no WIFI: URI can carry it`,
      { field: "ssid_hex" },
    );
  }
  const type = network.security === "wpa3-sae" ? "SAE" : "WPA";
  return `WIFI:T:${type};S:${escapeWifiUriValue(ssid)};P:${escapeWifiUriValue(passphrase)};H:${hidden};;`;
}

/** Renders `uri` as a QR code PNG (error correction level M). */
export async function qrCodePng(uri: string): Promise<Buffer> {
  return QRCode.toBuffer(uri, { type: "png", errorCorrectionLevel: "M", margin: 4, scale: 6 });
}
