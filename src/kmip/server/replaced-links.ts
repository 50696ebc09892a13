/**
 * The Replaced Object Links that a request sets on the objects it makes.
 * With managed keys, a new AES or private key whose Replaced Object Link
 * names an object with a managed key becomes a new version of that key
 * (see managed-keys.ts). The link thus rotates the linked object's key as
 * a Re-key of it would, so the dispatcher authorizes each such link as a
 * Re-key of the linked object.
 */
import type { StructureItem } from "../item.ts";
import { parseAttributeContainer } from "./attributes.ts";
import { child, optionalEnum, textOf } from "./items.ts";

/** The payload fields whose attributes go to the objects an operation makes. */
const NEW_OBJECT_CONTAINERS = [
  "TemplateAttribute",
  "Attributes",
  "CommonTemplateAttribute",
  "CommonAttributes",
  "PrivateKeyTemplateAttribute",
  "PrivateKeyAttributes",
  "PublicKeyTemplateAttribute",
  "PublicKeyAttributes",
];

/**
 * Returns the Linked Object Identifiers of the request's Replaced Object
 * Links, in request order. Throws the KMIP errors of
 * `parseAttributeContainer` for a malformed container.
 */
export function replacedObjectLinks(payload: StructureItem): string[] {
  const uids: string[] = [];
  for (const name of NEW_OBJECT_CONTAINERS) {
    for (const attribute of parseAttributeContainer(child(payload, name))) {
      if (attribute.name !== "Link" || attribute.value.type !== "Structure") continue;
      if (optionalEnum(attribute.value, "LinkType") !== "ReplacedObjectLink") continue;
      const target = child(attribute.value, "LinkedObjectIdentifier");
      if (target?.type === "TextString") uids.push(textOf(target));
    }
  }
  return uids;
}
