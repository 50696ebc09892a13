import { KeywardError } from "../errors.ts";
import { enumerationValue } from "./tags.ts";

/**
 * The KMIP Result Reasons that decoding a message can end in. Both exist in
 * every KMIP version from 1.0 to 2.1, so a server can send them to any client.
 */
export type KmipDecodeReason = "InvalidMessage" | "InvalidField";

/**
 * A KMIP message (TTLV, XML or JSON) that cannot be decoded. The codecs raise
 * only this error for bad input. `resultReason` is the Result Reason to send
 * in the error response, and `offset` is the byte or character position of
 * the fault.
 */
export class KmipDecodeError extends KeywardError {
  readonly resultReason: KmipDecodeReason;
  readonly offset: number | undefined;

  constructor(resultReason: KmipDecodeReason, message: string, offset?: number) {
    super(
      "invalid_kmip_message",
      offset === undefined ? message : `${message} at offset ${offset}`,
    );
    this.resultReason = resultReason;
    this.offset = offset;
  }

  /** The Result Reason as its enumeration value, for a TTLV response. */
  get resultReasonValue(): number {
    return enumerationValue("ResultReason", this.resultReason);
  }
}

export function isKmipDecodeError(error: unknown): error is KmipDecodeError {
  return error instanceof KmipDecodeError;
}
