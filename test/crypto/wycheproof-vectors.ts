import { readFileSync } from "node:fs";

/**
 * Loader and checker for Project Wycheproof vector files.
 *
 * The vectors live in the shared folder beside the repository root
 * (`<root>/../shared/vectors/wycheproof/`), which is where CI places them too.
 */
const VECTORS_DIR = new URL("../../../shared/vectors/wycheproof/", import.meta.url);

export type WycheproofResult = "valid" | "invalid" | "acceptable";

export interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  result: WycheproofResult;
}

export interface WycheproofGroup<T extends WycheproofTest> {
  type: string;
  tests: T[];
}

export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

export function loadVectors<G>(fileName: string): WycheproofFile<G> {
  return JSON.parse(readFileSync(new URL(fileName, VECTORS_DIR), "utf8")) as WycheproofFile<G>;
}

export function hex(value: string): Buffer {
  return Buffer.from(value, "hex");
}

/** Counts of checked cases by Wycheproof result, plus the messages of failed checks. */
export class CaseTally {
  readonly counts: Record<WycheproofResult, number> = { valid: 0, invalid: 0, acceptable: 0 };
  readonly failures: string[] = [];

  /**
   * Records one case: `accepted` is whether Keyward accepted it. Valid cases
   * must be accepted and invalid ones rejected; an acceptable case must match
   * `acceptableStand`, the documented choice for it.
   */
  record(test: WycheproofTest, accepted: boolean, acceptableStand?: boolean): void {
    this.counts[test.result] += 1;
    let expected: boolean | undefined = acceptableStand;
    if (test.result === "valid") expected = true;
    if (test.result === "invalid") expected = false;
    if (expected === undefined) {
      this.failures.push(`tcId ${test.tcId}: acceptable case without a documented stand`);
    } else if (accepted !== expected) {
      this.failures.push(
        `tcId ${test.tcId} (${test.result}, ${test.flags.join(",")}, "${test.comment}"): ` +
          `expected ${expected ? "accept" : "reject"}, got ${accepted ? "accept" : "reject"}`,
      );
    }
  }

  fail(test: WycheproofTest, message: string): void {
    this.failures.push(`tcId ${test.tcId} (${test.result}, "${test.comment}"): ${message}`);
  }

  get total(): number {
    return this.counts.valid + this.counts.invalid + this.counts.acceptable;
  }

  summary(): string {
    const { valid, invalid, acceptable } = this.counts;
    return `${this.total} cases: ${valid} valid, ${invalid} invalid, ${acceptable} acceptable`;
  }
}
