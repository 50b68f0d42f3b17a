/**
 * The limits on what a log line may hold, and the two escapes that keep job data from steering a
 * terminal or a log viewer. Job bodies, task names and error messages are written by whoever put the
 * job, so everything here treats strings as hostile.
 */

/**
 * The caps bsworker's logger applies (README, "Logs"). Each cut leaves a marker saying how much went.
 * Frozen: the logger and the worker read the same numbers.
 */
export const LOG_LIMITS = Object.freeze({
  /** Characters kept of a line's `msg`. */
  messageChars: 2_000,
  /** Characters kept of an error's `message`. */
  errorMessageChars: 2_000,
  /** Stack frames kept of an error's `stack`. */
  stackFrames: 20,
  /** Characters kept of an error's `stack`, header included. */
  stackChars: 8_192,
  /** Levels of `cause` followed below the logged error. */
  causeDepth: 3,
  /** Characters of a whole line past which every string in it is cut to {@link LOG_LIMITS.fieldChars}. */
  lineChars: 65_536,
  /** Characters kept of each string in a line that was over {@link LOG_LIMITS.lineChars}. */
  fieldChars: 2_000,
  /** Characters kept of a job body the worker logs, by default. */
  bodyChars: 4_096,
});

/**
 * Keeps the first `max` characters of `text` and appends a marker saying how many were cut, so a reader
 * knows the value is not whole. Never splits a surrogate pair. Returns `text` itself when it fits.
 */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, Math.floor(max));
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}… [${text.length - end} more chars cut]`;
}

/**
 * Characters that JSON.stringify leaves raw but that a terminal or log viewer acts on: DEL, the C1
 * controls (U+009B is CSI, the 8-bit escape sequence introducer), the Unicode line and paragraph
 * separators (line breaks to JavaScript and many viewers) and the bidirectional controls (U+202E turns
 * the rest of a line around). JSON.stringify already escapes C0.
 */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same set for a test without the global flag's `lastIndex` state. */
const JSON_UNSAFE_TEST = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Everything a terminal must not receive raw from job data: all of {@link JSON_UNSAFE} plus C0. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const TERMINAL_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const TERMINAL_UNSAFE_TEST = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function unicodeEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

function terminalEscape(char: string): string {
  return SHORT_ESCAPES[char] ?? unicodeEscape(char);
}

/**
 * Escapes, as `\uXXXX`, the characters of {@link JSON_UNSAFE} in a serialized JSON line. Such characters
 * can only stand inside JSON strings, where `\uXXXX` means the same character, so the line stays valid
 * JSON with the same content. One regex test when there is nothing to escape: the per-job path.
 */
export function escapeJsonLine(line: string): string {
  return JSON_UNSAFE_TEST.test(line) ? line.replace(JSON_UNSAFE, unicodeEscape) : line;
}

/**
 * Makes a string safe to print on a terminal: every control character (C0 including newline and tab,
 * DEL, C1), line separator and bidirectional control becomes visible text (`\n`, `\u202e`).
 */
export function escapeForTerminal(text: string): string {
  return TERMINAL_UNSAFE_TEST.test(text) ? text.replace(TERMINAL_UNSAFE, terminalEscape) : text;
}
