import { PROBLEM_PREFIX, type ProblemDocument, type ProblemType } from "../problems.ts";

/** A failed validation: the problem stored on the challenge, and the underlying error for the log. */
export class ValidationFailure extends Error {
  override readonly name = "ValidationFailure";
  readonly type: ProblemType;

  constructor(type: ProblemType, detail: string, cause?: unknown) {
    super(detail, cause === undefined ? undefined : { cause });
    this.type = type;
  }

  toDocument(): ProblemDocument {
    return { type: PROBLEM_PREFIX + this.type, detail: this.message, status: 400 };
  }
}
