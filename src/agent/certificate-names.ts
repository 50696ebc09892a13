import { canonicalAltName } from "../devices/certificate-names.ts";
import { readGeneralNames } from "../engines/pki/general-names.ts";
import * as x509 from "../engines/pki/x509.ts";

const SUBJECT_ALT_NAME_OID = "2.5.29.17";

/** Returns a name in the form the server compares names in: DNS names in lower case, IP addresses canonical. */
function canonical(name: string): string {
  return canonicalAltName(name) ?? name.toLowerCase();
}

/**
 * Compares the names in a PEM certificate with the names its key was made
 * for. The subject must have exactly one common name, equal to
 * `commonName`, and the subject alternative names must be exactly
 * `altNames`, in any order. Returns undefined when they match, otherwise a
 * message that lists the difference.
 */
export function certificateNameMismatch(
  certificatePem: string,
  commonName: string,
  altNames: readonly string[],
): string | undefined {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
  } catch {
    return "the certificate is not valid PEM";
  }
  const commonNames = certificate.subjectName.getField("CN");
  if (commonNames.length !== 1 || commonNames[0] !== commonName) {
    return `the certificate's common name is ${JSON.stringify(commonNames.join(", "))}, not ${JSON.stringify(commonName)}`;
  }

  const extension = certificate.getExtension(SUBJECT_ALT_NAME_OID);
  let served: string[];
  try {
    served =
      extension === null
        ? []
        : readGeneralNames(new Uint8Array(extension.value)).map((name) =>
            name.type === "dns" || name.type === "ip"
              ? canonical(name.value)
              : `${name.type}:${name.value}`,
          );
  } catch {
    return "the certificate's subject alternative names do not parse";
  }
  const expected = altNames.map(canonical);
  const missing = expected.filter((name) => !served.includes(name));
  const unexpected = served.filter((name) => !expected.includes(name));
  if (missing.length === 0 && unexpected.length === 0) return undefined;
  const parts = [
    ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []),
    ...(unexpected.length > 0 ? [`unexpected ${unexpected.join(", ")}`] : []),
  ];
  return `the certificate's subject alternative names differ from the requested ones: ${parts.join("; ")}`;
}
