import { KeywardError } from "../../errors.ts";

/**
 * A KMIP operation that failed in a way the client caused or must know
 * about. The dispatcher turns it into a batch item with Result Status
 * Operation Failed, this Result Reason (the normalized name of a Result
 * Reason enumeration value, such as "ItemNotFound") and the message as
 * Result Message. Messages never contain key material or plaintext.
 */
export class KmipOperationError extends KeywardError {
  readonly resultReason: string;

  constructor(resultReason: string, message: string) {
    super("invalid_request", message);
    this.resultReason = resultReason;
  }
}

export function isKmipOperationError(error: unknown): error is KmipOperationError {
  return error instanceof KmipOperationError;
}

export function itemNotFound(uid: string): KmipOperationError {
  return new KmipOperationError("ObjectNotFound", `no object has the unique identifier "${uid}"`);
}

export function invalidField(message: string): KmipOperationError {
  return new KmipOperationError("InvalidField", message);
}

export function wrongState(message: string): KmipOperationError {
  return new KmipOperationError("WrongKeyLifecycleState", message);
}
