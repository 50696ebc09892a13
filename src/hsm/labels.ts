/**
 * Limits on PKCS#11 labels. This file imports no native code, so the
 * configuration can check labels without loading the PKCS#11 addon.
 */

/** PKCS#11 token labels are 32 bytes, padded with spaces (CK_TOKEN_INFO.label). */
export const MAX_TOKEN_LABEL_BYTES = 32;
