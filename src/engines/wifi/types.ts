/** Security modes of a Wi-Fi network. */
export const SECURITY_MODES = [
  "wpa2-psk",
  "wpa3-sae",
  "wpa2-wpa3",
  "wpa2-enterprise",
  "wpa3-enterprise",
] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];

/** Character sets of generated passphrases. */
export const PASSPHRASE_CHARSETS = ["alphanumeric", "unambiguous", "printable"] as const;
export type PassphraseCharset = (typeof PASSPHRASE_CHARSETS)[number];

/** Length and charset of generated passphrases. */
export interface PassphrasePolicy {
  /** Characters, 8 to 63. */
  length: number;
  charset: PassphraseCharset;
}

/** A passphrase (or raw PSK in hex) and the one it replaced, still valid until `expiresAt`. */
export interface Credential {
  passphrase: string;
  /** Counter that rises by one with each new passphrase. SAE password identifiers carry it. */
  generation: number;
  createdAt: string;
  previous?: { passphrase: string; generation: number; expiresAt: string };
}

/** A stored network: `networks/<name>`. */
export interface NetworkRecord {
  name: string;
  /** The SSID's bytes in lowercase hex (1 to 32 bytes). */
  ssidHex: string;
  security: SecurityMode;
  /** True when the access points do not broadcast the SSID. The `WIFI:` URI then carries `H:true`. */
  hidden: boolean;
  /** VLAN IDs that keys may use, ascending. */
  vlans: number[];
  passphrasePolicy: PassphrasePolicy;
  /** Age in seconds after which the rotation job replaces a passphrase. 0 turns rotation off. */
  rotationPeriodSeconds: number;
  /** Time in seconds that a replaced passphrase stays valid beside the new one. */
  graceWindowSeconds: number;
  /** Devices that receive the access point files: by name, and by group. */
  accessPoints: { devices: string[]; groups: string[] };
  /** PKI mount and issuer whose CA chain the FreeRADIUS EAP-TLS module trusts. Only enterprise networks have one. */
  eapTls?: { pkiMount: string; issuer: string };
  /** The passphrase every station may use (MAC 00:00:00:00:00:00), when the network has one. */
  shared?: Credential;
  /** Version of every device artifact of this network, raised by every change. */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A stored per-device key: `keys/<network>/<name>`. */
export interface KeyRecord {
  name: string;
  /** The station's MAC address, lowercase with colons. */
  mac: string;
  /** hostapd's `keyid` tag. */
  keyId: string;
  vlan?: number;
  /** SAE password identifier stem, to which the generation is appended. */
  saePasswordId?: string;
  /** The device whose agent receives the station configuration. */
  deviceId?: string;
  credential: Credential;
  createdAt: string;
  updatedAt: string;
}

/** True for the modes whose stations authenticate with a passphrase. */
export function usesPassphrase(security: SecurityMode): boolean {
  return security === "wpa2-psk" || security === "wpa3-sae" || security === "wpa2-wpa3";
}

/** True for the modes that use WPA-PSK (wpa_psk_file). */
export function usesPsk(security: SecurityMode): boolean {
  return security === "wpa2-psk" || security === "wpa2-wpa3";
}

/** True for the modes that use SAE (sae_password). */
export function usesSae(security: SecurityMode): boolean {
  return security === "wpa3-sae" || security === "wpa2-wpa3";
}
