import type { KmipItem, StructureItem } from "../../item.ts";
import type { OperationContext } from "../context.ts";
import { KmipOperationError } from "../errors.ts";
import { child, enumItem, optionalEnum } from "../items.ts";
import { contentInFormat } from "../material.ts";
import { attributeScalar, replaceAttribute, scalarAttribute } from "../objects.ts";
import { requestObject, uidItem } from "./common.ts";

/**
 * Get: returns the object's content, converted to the requested Key Format
 * Type when the object is a key. Key wrapping and compression are not
 * supported.
 */
export async function get(payload: StructureItem, context: OperationContext): Promise<KmipItem[]> {
  const object = await requestObject(payload, context);
  if (child(payload, "KeyWrappingSpecification") !== undefined) {
    throw new KmipOperationError("KeyWrapTypeNotSupported", "key wrapping is not supported");
  }
  if (attributeScalar(object, "Extractable") === false) {
    throw new KmipOperationError(
      "NotExtractable",
      "the object is not extractable, so its key material cannot be read",
    );
  }
  if (attributeScalar(object, "Sensitive") === true) {
    throw new KmipOperationError(
      "Sensitive",
      "the object is sensitive, so its key material cannot be read",
    );
  }
  const format = optionalEnum(payload, "KeyFormatType");
  const content = contentInFormat(object, format);
  // Fresh turns false once the key material has left the server.
  // NOTE: no object has Fresh yet, because the server does not set it at
  // creation and clients may not set it, so this write never runs today.
  if (attributeScalar(object, "Fresh") === true) {
    await context.store.put(
      replaceAttribute(object, "Fresh", scalarAttribute("Fresh", "Boolean", false)),
    );
  }
  return [enumItem("ObjectType", object.objectType), uidItem(object.uid), content];
}
