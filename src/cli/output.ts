/**
 * How the operating commands print: human tables by default (cli-table3), one JSON document with
 * `--json` (a stable, documented shape per command, for scripts), colours only on a terminal.
 */
import Table from 'cli-table3';
import pc from 'picocolors';

/** Where a command writes, and whether that is a terminal. */
export interface Output {
  /** Writes one line (a newline is added). */
  readonly print: (line: string) => void;
  /** True when stdout is a terminal: colours, prompts and live redraws are allowed. */
  readonly isTTY: boolean;
}

/** Colour functions that are no-ops off a terminal, so piped output stays plain text. */
export function colors(output: Output): ReturnType<typeof pc.createColors> {
  return pc.createColors(output.isTTY);
}

/** Renders rows as an aligned table; numbers are right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[], output: Output): string {
  const c = colors(output);
  const table = new Table({
    head: headers.map((header) => c.bold(header)),
    style: { head: [], border: [], compact: true },
    colAligns: headers.map((_, i) => (rows.some((row) => typeof row[i] === 'number') ? 'right' : 'left')),
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) table.push(row.map((cell) => String(cell)));
  return table.toString();
}

/** Prints a table. */
export function printTable(output: Output, headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  for (const line of renderTable(headers, rows, output).split('\n')) output.print(line);
}

/** Prints one JSON document (two-space indented, so it is readable and `jq` reads it). */
export function printJson(output: Output, value: unknown): void {
  output.print(JSON.stringify(value, null, 2));
}
