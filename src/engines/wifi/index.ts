export {
  accessPointArtifactId,
  stationArtifactId,
  WIFI_ARTIFACT_KIND,
} from "./device-artifacts.ts";
export { WifiDeviceSource } from "./device-source.ts";
export { createWifiJobs, type WifiJob } from "./jobs.ts";
export { escapeWifiUriValue, qrCodePng, wifiUri } from "./onboarding.ts";
export { derivePsk, generatePassphrase, isRawPsk } from "./passphrase.ts";
export { renderSaePasswords, renderSupplicantBlock, renderWpaPskFile } from "./render.ts";
export { registerWifiRoutes, type WifiServiceResolver } from "./routes.ts";
export { WifiService } from "./service.ts";
export type * from "./types.ts";
