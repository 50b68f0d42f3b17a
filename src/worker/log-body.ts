/**
 * A job body as it may appear in a log line: the values of redacted kwargs keys replaced, and the text
 * capped. Bodies are untrusted and may hold secrets; the logger escapes what is left for the terminal.
 */

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';
/** How deep the redaction walk goes; deeper values are replaced whole (the body is being logged, not run). */
const MAX_DEPTH = 64;

/**
 * The body's text for a log line. A JSON body has the values of `redact` keys (at any depth, compared
 * without regard to case) replaced by `[redacted]`; the result is cut to `maxChars`
 * with a note of how much was cut. Never throws.
 */
export function bodyForLog(body: Buffer, redact: readonly string[], maxChars: number): string {
  let text = body.toString('utf8');
  if (redact.length > 0) {
    const keys = new Set(redact.map((key) => key.toLowerCase()));
    try {
      const parsed: unknown = JSON.parse(text);
      text = JSON.stringify(redactValue(parsed, keys, 0)) ?? text;
    } catch {
      // Not JSON: there are no keys to find, so the text is logged as it is (capped).
    }
  }
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}… (${text.length - maxChars} more characters not logged)`;
}

function redactValue(value: unknown, keys: ReadonlySet<string>, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, keys, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Defined, not assigned: a `__proto__` key from JSON must stay a plain key.
    Object.defineProperty(copy, key, {
      value: keys.has(key.toLowerCase()) ? REDACTED : redactValue(item, keys, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
