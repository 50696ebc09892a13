/**
 * The one entry point to @peculiar/x509 in Keyward. The library resolves
 * its ASN.1 schemas through tsyringe, which needs the reflect-metadata
 * polyfill loaded first. Importing x509 through this module keeps that
 * order in every caller.
 */
import "reflect-metadata";

export * from "@peculiar/x509";
