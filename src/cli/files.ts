import { readFileSync } from "node:fs";

/** Plain descriptions of the common errors of reading a file named on the command line. */
const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EISDIR: "it is a directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a part of the path is not a directory",
};

/** Returns a one-line message for a failed read of `path`, which `description` names ("the CA certificate file"). */
export function fileReadMessage(description: string, path: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason =
    (code === undefined ? undefined : READ_ERRORS[code]) ??
    (error instanceof Error ? error.message : String(error));
  return `cannot read ${description} "${path}": ${reason}`;
}

/**
 * Reads a file that a flag or argument names. A failure becomes an Error
 * whose one-line message names `description` and the path, in place of Node's
 * bare "ENOENT: no such file or directory, open …".
 */
export function readInputFile(path: string, description: string): Buffer;
export function readInputFile(path: string, description: string, encoding: "utf8"): string;
export function readInputFile(
  path: string,
  description: string,
  encoding?: "utf8",
): Buffer | string {
  if (path === "") throw new Error(`${description} is missing: give a file path`);
  try {
    return encoding === undefined ? readFileSync(path) : readFileSync(path, encoding);
  } catch (error) {
    throw new Error(fileReadMessage(description, path, error), { cause: error });
  }
}
