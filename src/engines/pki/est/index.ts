export { EST_OPERATIONS, type EstConfig, type EstConfigInput } from "./config.ts";
export {
  DEFAULT_SECRET_TTL_SECONDS,
  type EnrollmentSecretRecord,
} from "./enrollment-secrets.ts";
export { decodeCertsOnly, encodeCertsOnly } from "./pkcs7.ts";
export { type BasicCredentials, type EstClient, EstService } from "./service.ts";
export { estTlsOptions, peerCertificateDer } from "./tls.ts";
