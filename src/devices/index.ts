export type {
  AppliedVersion,
  AppliedVersionReader,
  ArtifactContent,
  DeviceArtifact,
  DeviceArtifactSource,
  DeviceChangeNotifier,
  DeviceRef,
} from "./artifacts.ts";
export {
  type AuthenticatedDevice,
  authenticateDevice,
  authenticateDeviceRequest,
} from "./authentication.ts";
export { openSealed, type SealedValueBinding, sealSecret } from "./sealed.ts";
export { SECRET_ARTIFACT_KIND, secretArtifactId } from "./secrets.ts";
export { DeviceService, type DeviceServiceOptions, MAX_STATE_WAIT_SECONDS } from "./service.ts";
export { DeviceChangeWaiters } from "./waiters.ts";
