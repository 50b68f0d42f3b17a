/**
 * How the operating commands print: human tables by default (cli-table3), one JSON document with
 * `--json` (a stable, documented shape per command, for scripts), colours only on a terminal.
 */

import type TableType from 'cli-table3';
import pc from 'picocolors';
import { lazyRequire } from '../loader/lazy-require.js';

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
  const table = new (loadTable())({
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

// Characters JSON.stringify leaves unescaped that a terminal may still act on: DEL and the C1 controls
// (0x9b is an 8-bit CSI), the line/paragraph separators, and bidi overrides that reorder what is shown.
const TERMINAL_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const TERMINAL_UNSAFE_OR_C0 = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function unicodeEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * JSON text that is safe to put on a terminal: JSON.stringify escapes C0 controls inside strings; this
 * also escapes the characters it leaves alone. Still valid JSON, with the same value.
 */
export function terminalSafeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(TERMINAL_UNSAFE, unicodeEscape);
}

/** Plain text (an error message that may quote a body) with every control character escaped. */
export function terminalSafeText(text: string): string {
  return text.replace(TERMINAL_UNSAFE_OR_C0, unicodeEscape);
}

/**
 * Prints one JSON document (two-space indented, so it is readable and `jq` reads it). Job bodies are
 * untrusted, so characters a terminal could act on are escaped (still the same JSON value).
 */
export function printJson(output: Output, value: unknown): void {
  output.print(terminalSafeJson(value, 2));
}

/** `45s`, `12m 5s`, `10m`, `3h 12m`, `4d 2h`: two units at most, a zero second unit left out. */
export function formatDuration(seconds: number): string {
  const two = (big: number, bigUnit: string, small: number, smallUnit: string): string =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit} ${small}${smallUnit}`;
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3_600) return two(Math.floor(seconds / 60), 'm', seconds % 60, 's');
  if (seconds < 86_400) return two(Math.floor(seconds / 3_600), 'h', Math.floor((seconds % 3_600) / 60), 'm');
  return two(Math.floor(seconds / 86_400), 'd', Math.floor((seconds % 86_400) / 3_600), 'h');
}

// Loaded on first use: a worker process never draws a table, and its memory is measured.
const loadTable = lazyRequire<typeof TableType>('cli-table3');
