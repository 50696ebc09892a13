/**
 * KMIP over HTTP (the KMIP HTTPS profile): a POST whose body is one request
 * message in TTLV (`application/octet-stream`), XML (`text/xml` or
 * `application/xml`) or JSON (`application/json`). The response uses the
 * request's encoding. KMIP failures, including a body that does not decode,
 * are KMIP error responses with HTTP status 200, because the KMIP response
 * carries the failure. Only an unsupported media type (415) or an oversized
 * body (413) gets another status; the dispatcher audits those requests as
 * messages that could not be read.
 */
import { isKmipDecodeError } from "../errors.ts";
import type { KmipItem } from "../item.ts";
import { decodeJson, encodeJson } from "../json.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../ttlv.ts";
import { decodeXml, encodeXml } from "../xml.ts";
import type { KmipClient } from "./context.ts";
import type { KmipDispatcher } from "./dispatcher.ts";
import type { KmipPeerCertificate } from "./identity.ts";

export interface KmipHttpResponse {
  status: number;
  contentType: string;
  body: Buffer;
}

export interface KmipHttpOptions {
  /** The client's identity, as the listener passes it. */
  identity?: string;
  /** The client certificate, which a dispatcher with identities maps to a role. */
  certificate?: KmipPeerCertificate;
  /** The client's IP address, for the audit log. */
  remoteAddress?: string;
  /** Largest body accepted, in bytes. Default 1 MiB, as for TTLV. */
  maxMessageBytes?: number;
  /** True when the body was longer than `maxMessageBytes`, so the caller stopped reading it. */
  truncated?: boolean;
}

type Encoding = "ttlv" | "xml" | "json";

const MEDIA_TYPES: Readonly<Record<string, Encoding>> = {
  "application/octet-stream": "ttlv",
  "text/xml": "xml",
  "application/xml": "xml",
  "application/json": "json",
};

const RESPONSE_TYPES: Readonly<Record<Encoding, string>> = {
  ttlv: "application/octet-stream",
  xml: "text/xml; charset=utf-8",
  json: "application/json; charset=utf-8",
};

function encodingOf(contentType: string | undefined): Encoding | undefined {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  return mediaType === undefined ? undefined : MEDIA_TYPES[mediaType];
}

function plainError(status: number, message: string): KmipHttpResponse {
  return { status, contentType: "text/plain; charset=utf-8", body: Buffer.from(`${message}\n`) };
}

/** Serves one KMIP request that arrived over HTTP, for the API layer to mount. */
export async function handleKmipHttp(
  dispatcher: KmipDispatcher,
  contentType: string | undefined,
  body: Uint8Array,
  options: KmipHttpOptions = {},
): Promise<KmipHttpResponse> {
  const client: KmipClient = {
    identity: options.identity,
    remoteAddress: options.remoteAddress,
    certificate: options.certificate,
  };
  /** Audits a request that carries no readable KMIP message, then responds with `status`. */
  const rejectUnread = async (status: number, message: string) => {
    await dispatcher.rejectMessage(client, "InvalidMessage", message);
    return plainError(status, message);
  };
  const encoding = encodingOf(contentType);
  if (encoding === undefined) {
    return rejectUnread(
      415,
      "unsupported media type: send application/octet-stream (TTLV), text/xml or application/json",
    );
  }
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (options.truncated === true || body.length > maxMessageBytes) {
    return rejectUnread(413, `request body exceeds the maximum of ${maxMessageBytes} bytes`);
  }
  const respond = (item: KmipItem | Buffer): KmipHttpResponse => ({
    status: 200,
    contentType: RESPONSE_TYPES[encoding],
    body: Buffer.isBuffer(item)
      ? item
      : Buffer.from(encoding === "xml" ? encodeXml(item) : encodeJson(item), "utf8"),
  });

  if (encoding === "ttlv") {
    return respond(await dispatcher.handleTtlv(body, client, { maxMessageBytes }));
  }
  let request: KmipItem;
  try {
    const text = Buffer.from(body).toString("utf8");
    request =
      encoding === "xml"
        ? decodeXml(text, { maxLength: maxMessageBytes })
        : decodeJson(text, { maxLength: maxMessageBytes });
  } catch (error) {
    if (!isKmipDecodeError(error)) throw error;
    return respond(await dispatcher.rejectMessage(client, error.resultReason, error.message));
  }
  return respond(await dispatcher.handleMessage(request, client));
}
