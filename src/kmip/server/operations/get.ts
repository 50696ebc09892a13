import type { KmipItem, StructureItem } from "../../item.ts";
import type { OperationContext } from "../context.ts";
import { KmipOperationError } from "../errors.ts";
import { child, enumItem, optionalEnum } from "../items.ts";
import { contentInFormat } from "../material.ts";
import { attributeScalar, replaceAttribute, scalarAttribute } from "../objects.ts";
import { requestObject, uidItem } from "./common.ts";
import { wrapContent } from "./wrap.ts";

/**
 * Get: returns the object's content, converted to the requested Key Format
 * Type when the object is a key, and wrapped when the request has a Key
 * Wrapping Specification. Key compression is not supported.
 */
export async function get(payload: StructureItem, context: OperationContext): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  const wrapping = child(payload, "KeyWrappingSpecification");
  if (attributeScalar(object, "Extractable") === false) {
    throw new KmipOperationError(
      "NotExtractable",
      "the object is not extractable, so its key material cannot be read",
    );
  }
  // A Sensitive object's key material may leave the server only wrapped.
  if (attributeScalar(object, "Sensitive") === true && wrapping === undefined) {
    throw new KmipOperationError(
      "Sensitive",
      "the object is sensitive, so its key material can only be read wrapped",
    );
  }
  const format = optionalEnum(payload, "KeyFormatType");
  let content = contentInFormat(object, format);
  if (wrapping !== undefined) content = await wrapContent(content, wrapping, context);
  // Fresh turns false once the key material has left the server. Losing
  // that change to a power failure only shows the object as Fresh again.
  if (attributeScalar(object, "Fresh") === true) {
    await context.store.put(
      replaceAttribute(object, "Fresh", scalarAttribute("Fresh", "Boolean", false)),
      { durable: false },
    );
  }
  return [enumItem("ObjectType", object.objectType), uidItem(object.uid), content];
}
