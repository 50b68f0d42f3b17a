/**
 * Pretty lines for a terminal, made from pino's JSON lines in-process. pino-pretty removes most C0
 * controls but keeps newlines, tabs, bidi controls and line separators, and prints some fields raw, so
 * a job body holding `\nFORGED` would start a line of its own. Every string is escaped here first
 * (a newline shows as `\n`), and errors are drawn by {@link renderError}, which keeps a stack's frames on
 * their own lines but never a line break that came from the message.
 */

import type PinoPretty from 'pino-pretty';
import { escapeForTerminal } from './text.js';

/** The keys pino-pretty treats as errors, drawn by {@link renderError}. */
const ERROR_KEYS = new Set(['err', 'error']);
/** Nested causes drawn; the serializer already stops at fewer, this bounds lines from elsewhere. */
const MAX_RENDER_DEPTH = 5;
/** The indentation of a frame in a V8 stack, used for everything under an error's first line. */
const INDENT = '    ';

/** Escapes every string and key of a parsed log value for the terminal. */
function escapeTree(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return escapeForTerminal(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth > 64) return '[depth limit]';
  if (Array.isArray(value)) return value.map((item) => escapeTree(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // defineProperty: a `__proto__` key from JSON.parse must stay a key, not become a prototype.
    Object.defineProperty(out, escapeForTerminal(key), { value: escapeTree(item, depth + 1), enumerable: true, writable: true });
  }
  return out;
}

/**
 * The lines of a stack after its header, each escaped. A line that does not start with whitespace
 * cannot be a V8 frame: it is the rest of a multi-line message (or a hand-made stack) and is joined to
 * the line before with a visible `\n`, so that it can never pass for a log line of its own.
 */
function stackLines(rest: string): string[] {
  const lines: string[] = [];
  for (const line of rest.split('\n')) {
    const last = lines.length - 1;
    if (last >= 0 && !/^\s/.test(line)) lines[last] += `\\n${escapeForTerminal(line)}`;
    else lines.push(escapeForTerminal(line));
  }
  return lines;
}

function indentRest(text: string, prefix: string): string {
  return text.replace(/\n/g, `\n${prefix}`);
}

/**
 * Draws a serialized error for the terminal: `Name [CODE]: message` on the first line, then the stack's
 * frames, the other properties and the cause, indented. The only raw newlines are the ones between
 * those parts; every piece of text is escaped.
 */
export function renderError(value: unknown, depth = 0): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return escapeForTerminal(typeof value === 'string' ? value : String(JSON.stringify(value)));
  }
  if (depth >= MAX_RENDER_DEPTH) return '[cause depth limit]';
  const error = value as Record<string, unknown>;
  const type = typeof error.type === 'string' ? error.type : 'Error';
  const message = typeof error.message === 'string' ? error.message : '';
  const code = typeof error.code === 'string' || typeof error.code === 'number' ? ` [${error.code}]` : '';
  let first = escapeForTerminal(`${type}${code}${message === '' ? '' : `: ${message}`}`);
  const lines: string[] = [];
  if (typeof error.stack === 'string') {
    const header = message === '' ? type : `${type}: ${message}`;
    const known = error.stack.startsWith(header);
    const [tail = '', ...frames] = stackLines(known ? error.stack.slice(header.length) : `\n${error.stack}`);
    first += tail;
    lines.push(...frames);
  }
  for (const [key, item] of Object.entries(error)) {
    if (key === 'type' || key === 'message' || key === 'stack' || key === 'code' || key === 'cause' || key === 'errors') continue;
    lines.push(`${INDENT}${escapeForTerminal(key)}: ${escapeForTerminal(String(JSON.stringify(item)))}`);
  }
  if (Array.isArray(error.errors)) {
    error.errors.forEach((item, index) => {
      lines.push(`${INDENT}errors[${index}]: ${indentRest(renderError(item, depth + 1), INDENT)}`);
    });
  }
  if (error.cause !== undefined) lines.push(`${INDENT}cause: ${indentRest(renderError(error.cause, depth + 1), INDENT)}`);
  return [first, ...lines].join('\n');
}

/** What pino writes to: one JSON line per call. */
export interface LineDestination {
  write(line: string): boolean;
}

/**
 * A destination for pino that turns each JSON line into an escaped pretty line and writes it to
 * `destination` synchronously, so nothing waits in a buffer when the process dies.
 */
export function prettyDestination(destination: NodeJS.WritableStream, pretty: typeof PinoPretty): LineDestination {
  const prettify = pretty.prettyFactory({
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    customPrettifiers: { err: (value) => renderError(value), error: (value) => renderError(value) },
  });
  return {
    write(line: string): boolean {
      let out: string;
      try {
        const log: unknown = JSON.parse(line);
        if (typeof log !== 'object' || log === null || Array.isArray(log)) throw new TypeError('not a log object');
        const safe: Record<string, unknown> = {};
        for (const [key, item] of Object.entries(log)) {
          const value = ERROR_KEYS.has(key) ? item : escapeTree(item, 0);
          Object.defineProperty(safe, escapeForTerminal(key), { value, enumerable: true, writable: true });
        }
        out = prettify(safe);
      } catch {
        out = `${escapeForTerminal(line.replace(/\n$/, ''))}\n`;
      }
      return destination.write(out);
    },
  };
}
