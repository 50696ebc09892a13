import {
  AsnArray,
  AsnConvert,
  AsnProp,
  AsnPropTypes,
  AsnType,
  AsnTypeTypes,
} from "@peculiar/asn1-schema";
import { Attribute } from "@peculiar/asn1-x509";
import type { Role } from "../roles.ts";

/** AttrOrOID (RFC 7030 section 4.5.2): a bare OID, or an attribute with values. */
export class AttrOrOid {
  oid?: string;
  attribute?: Attribute;

  constructor(params: Partial<AttrOrOid> = {}) {
    Object.assign(this, params);
  }
}
// Decorators are applied as calls because the project compiles without
// TypeScript's experimentalDecorators.
AsnProp({ type: AsnPropTypes.ObjectIdentifier })(AttrOrOid.prototype, "oid");
AsnProp({ type: Attribute })(AttrOrOid.prototype, "attribute");
AsnType({ type: AsnTypeTypes.Choice })(AttrOrOid);

/** CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID (RFC 7030 section 4.5.2). */
export class CsrAttrs extends AsnArray<AttrOrOid> {
  constructor(items: AttrOrOid[] = []) {
    super(items);
    Object.setPrototypeOf(this, CsrAttrs.prototype);
  }
}
AsnType({ type: AsnTypeTypes.Sequence, itemType: AttrOrOid })(CsrAttrs);

const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha256WithRsaEncryption: "1.2.840.113549.1.1.11",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  ed25519: "1.3.101.112",
} as const;

/** Named curves for the role's EC `key_bits`; key-pairs.ts accepts the same two sizes. */
const EC_CURVES: Record<number, { oid: string; signature: string }> = {
  256: { oid: "1.2.840.10045.3.1.7", signature: OID.ecdsaWithSha256 },
  384: { oid: "1.3.132.0.34", signature: OID.ecdsaWithSha384 },
};

/**
 * Builds the CSR attributes a device should use under `role`: the key
 * algorithm (for EC, an ecPublicKey attribute naming the curve, as in the
 * example of RFC 7030 section 4.5.2) and the signature algorithm. Returns
 * the DER of CsrAttrs, or undefined when the role accepts any key type, so
 * there is nothing to ask for.
 */
export function csrAttributesFor(role: Role): Buffer | undefined {
  const items: AttrOrOid[] = [];
  switch (role.key_type) {
    case "rsa":
      items.push(new AttrOrOid({ oid: OID.rsaEncryption }));
      items.push(new AttrOrOid({ oid: OID.sha256WithRsaEncryption }));
      break;
    case "ec": {
      const curve = EC_CURVES[role.key_bits === 0 ? 256 : role.key_bits] ?? EC_CURVES[256]!;
      const curveDer = AsnConvert.serialize(new AttrOrOid({ oid: curve.oid }));
      items.push(
        new AttrOrOid({ attribute: new Attribute({ type: OID.ecPublicKey, values: [curveDer] }) }),
      );
      items.push(new AttrOrOid({ oid: curve.signature }));
      break;
    }
    case "ed25519":
      items.push(new AttrOrOid({ oid: OID.ed25519 }));
      break;
    default:
      return undefined;
  }
  return Buffer.from(AsnConvert.serialize(new CsrAttrs(items)));
}
