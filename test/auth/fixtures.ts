import { type Identity, TokenStore } from "../../src/auth/token-store.ts";
import { KeywardError } from "../../src/errors.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

/** A clock that tests move by hand. */
export class FixedClock {
  #now: number;

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  readonly now = () => new Date(this.#now);
  readonly millis = () => this.#now;

  advanceSeconds(seconds: number): void {
    this.#now += seconds * 1000;
  }
}

/** Records log lines so tests can check what was logged, and that no token was. */
export class RecordingLogger {
  readonly lines: { fields: object; message?: string }[] = [];

  info(fields: object, message?: string): void {
    this.lines.push({ fields, message });
  }

  warn(fields: object, message?: string): void {
    this.lines.push({ fields, message });
  }

  text(): string {
    return JSON.stringify(this.lines);
  }
}

export interface TokenFixture {
  barrier: MemoryBarrier;
  clock: FixedClock;
  logger: RecordingLogger;
  tokens: TokenStore;
  rootToken: string;
  root: Identity;
}

/** Creates a token store on an in-memory barrier with a fixed clock and one root token. */
export async function createTokenFixture(): Promise<TokenFixture> {
  const barrier = new MemoryBarrier();
  const clock = new FixedClock();
  const logger = new RecordingLogger();
  const tokens = new TokenStore(barrier, { clock: clock.now, logger });
  const rootToken = await tokens.createRootToken();
  const root = await tokens.authenticate(rootToken);
  return { barrier, clock, logger, tokens, rootToken, root };
}

/** Returns an assert.rejects validator that expects a KeywardError with `code` (and `field` when given). */
export function keywardError(code: string, field?: string) {
  return (error: unknown) => {
    if (!(error instanceof KeywardError)) throw error;
    if (error.code !== code)
      throw new Error(`expected code ${code}, got ${error.code}: ${error.message}`);
    if (field !== undefined && error.field !== field) {
      throw new Error(`expected field ${field}, got ${error.field}`);
    }
    return true;
  };
}
