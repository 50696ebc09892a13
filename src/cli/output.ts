/** Output formats of every CLI command. */
export const OUTPUT_FORMATS = ["table", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "n/a";
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((item) => typeof item !== "object" || item === null)) {
    return `[${value.join(" ")}]`;
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Renders an object as a two-column Key/Value table, keys sorted, as Vault's CLI does. */
export function renderTable(data: Record<string, unknown>): string {
  const rows = Object.keys(data)
    .sort()
    .map((key) => [key, formatValue(data[key])] as const);
  const width = Math.max(3, ...rows.map(([key]) => key.length));
  const lines = [`${"Key".padEnd(width)}    Value`, `${"---".padEnd(width)}    -----`];
  for (const [key, value] of rows) lines.push(`${key.padEnd(width)}    ${value}`);
  return lines.join("\n");
}

/** Renders a list of names under a heading, one per line. */
export function renderList(heading: string, items: string[]): string {
  return [heading, "-".repeat(heading.length), ...items].join("\n");
}

/** Prints `data` in the chosen format. JSON output is the whole value; tables show objects. */
export function print(format: OutputFormat, value: unknown) {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (value === undefined) return;
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    process.stdout.write(`${renderTable(value as Record<string, unknown>)}\n`);
    return;
  }
  process.stdout.write(`${formatValue(value)}\n`);
}

/** Prints a Vault response: its `data` (or the whole body when there is none) and any warnings. */
export function printResponse(format: OutputFormat, body: unknown) {
  const response = body as { data?: unknown; warnings?: unknown } | undefined;
  if (Array.isArray(response?.warnings)) {
    for (const warning of response.warnings) process.stderr.write(`WARNING: ${String(warning)}\n`);
  }
  if (format === "json") {
    print(format, body);
    return;
  }
  const data = response?.data ?? body;
  if (data === undefined) {
    process.stdout.write("Success! No data returned.\n");
    return;
  }
  print(format, data);
}
