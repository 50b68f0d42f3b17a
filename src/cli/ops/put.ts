/**
 * `bsworker put TUBE FUNC_NAME`: enqueues one job in the standard envelope from the shell, checked
 * exactly as the library checks a put (envelope encoding, put options, the server's `max-job-size`).
 */
import { type FileHandle, open } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { AdminOptions } from '../../admin/admin.js';
import type { KwargsCheck } from '../../admin/put.js';
import { encodeEnvelope } from '../../envelope/envelope.js';
import { PUT_DEFAULTS, validatePutOptions } from '../../tasks/put-options.js';
import type { RegisteredTask } from '../../tasks/registry.js';
import type { PutOptions } from '../../tasks/types.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { assertValidKwargs, loadRegisteredTask } from '../jobs-registry.js';
import { type Output, printJson, terminalSafeJson, terminalSafeText } from '../output.js';
import { parseTube } from '../parse.js';
import { jsonOption, opsAction, serverOf, serverOption, urlOf, urlOption } from './common.js';

/** The document `bsworker put --json` prints. */
export interface PutJson {
  /** The new job's id, a decimal string; `host:port/42` with several servers configured. */
  readonly id: string;
  /** Only with several servers configured: the server that took the job (puts are spread round-robin). */
  readonly server?: string;
  /** The tube the job was put into. */
  readonly tube: string;
  /** The task name written into the body. */
  readonly func_name: string;
}

/** Where a syntax error is in a JSON text, and what is wrong there. */
export interface JsonSyntaxError {
  /** Offset in UTF-16 code units, as `String.prototype.slice` counts. */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters (code points) from the start of the line. */
  readonly column: number;
  /** What was expected and what was found, e.g. ``expected a value, got "}"``. */
  readonly problem: string;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const DIGIT = /[0-9]/;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Finds the first syntax error in `text` by scanning the JSON grammar (RFC 8259); undefined when the
 * text is valid JSON. JSON.parse says *that* the text is wrong, but Node 20 gives a position only for
 * some errors ("Unexpected token '\n', ... is not valid JSON" has none), and an operator typing
 * `--kwargs` needs to be told where.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const at = (offset: number, problem: string): JsonSyntaxError => ({ offset, ...lineAndColumn(text, offset), problem });
  const found = (offset: number): string => {
    if (offset >= text.length) return 'the end of the input';
    // A whole word reads better than its first letter: `got "hello"`, not `got "h"`.
    const word = /^[A-Za-z0-9_$.+-]{2,20}/.exec(text.slice(offset))?.[0] ?? String.fromCodePoint(text.codePointAt(offset) ?? 0);
    // Single quotes read best around `"`, `}` and words; anything else is JSON-quoted so it stays visible.
    return /^[\x21-\x26\x28-\x7e]+$/.test(word) ? `'${word}'` : terminalSafeJson(word);
  };
  const skipWhitespace = (): void => {
    while (i < text.length && WHITESPACE.has(text[i] as string)) i += 1;
  };
  const scanString = (): JsonSyntaxError | undefined => {
    const start = i;
    i += 1;
    for (;;) {
      if (i >= text.length) return at(start, 'a string is never closed (no matching `"`)');
      const char = text[i] as string;
      if (char === '"') {
        i += 1;
        return undefined;
      }
      if (char === '\\') {
        const next = text[i + 1];
        if (next === 'u') {
          if (!HEX4.test(text.slice(i + 2, i + 6))) return at(i, 'a \\u escape needs four hex digits');
          i += 6;
        } else if (next !== undefined && ESCAPES.has(next)) i += 2;
        else return at(i, `invalid escape ${JSON.stringify(`\\${next ?? ''}`)} in a string`);
      } else if (char.charCodeAt(0) < 0x20) {
        return at(i, `a string may not hold a raw control character (${JSON.stringify(char)}); escape it`);
      } else i += 1;
    }
  };
  const scanDigits = (): boolean => {
    const start = i;
    while (i < text.length && DIGIT.test(text[i] as string)) i += 1;
    return i > start;
  };
  const scanNumber = (): JsonSyntaxError | undefined => {
    if (text[i] === '-') i += 1;
    if (text[i] === '0') i += 1;
    else if (!scanDigits()) return at(i, `expected a digit, got ${found(i)}`);
    if (text[i] === '.') {
      i += 1;
      if (!scanDigits()) return at(i, `expected a digit after the decimal point, got ${found(i)}`);
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i += 1;
      if (text[i] === '+' || text[i] === '-') i += 1;
      if (!scanDigits()) return at(i, `expected a digit in the exponent, got ${found(i)}`);
    }
    return undefined;
  };

  // An explicit stack instead of recursion: a deeply nested input must not overflow the call stack.
  const open: ('{' | '[')[] = [];
  let expect: 'value' | 'key' | 'after' = 'value';
  for (;;) {
    skipWhitespace();
    const char = text[i];
    if (expect === 'value') {
      if (char === '{' || char === '[') {
        open.push(char);
        i += 1;
        skipWhitespace();
        if (text[i] === (char === '{' ? '}' : ']')) {
          open.pop();
          i += 1;
          expect = 'after';
        } else expect = char === '{' ? 'key' : 'value';
        continue;
      }
      let error: JsonSyntaxError | undefined;
      if (char === '"') error = scanString();
      else if (char === '-' || (char !== undefined && DIGIT.test(char))) error = scanNumber();
      else {
        const literal = ['true', 'false', 'null'].find((word) => text.startsWith(word, i));
        if (literal === undefined) return at(i, `expected a value, got ${found(i)}`);
        i += literal.length;
      }
      if (error) return error;
      expect = 'after';
    } else if (expect === 'key') {
      if (char !== '"') return at(i, `expected a property name in double quotes, got ${found(i)}`);
      const error = scanString();
      if (error) return error;
      skipWhitespace();
      if (text[i] !== ':') return at(i, `expected ':' after a property name, got ${found(i)}`);
      i += 1;
      expect = 'value';
    } else {
      const container = open[open.length - 1];
      if (container === undefined) return i < text.length ? at(i, `unexpected ${found(i)} after the end of the JSON value`) : undefined;
      const close = container === '{' ? '}' : ']';
      if (char === close) {
        open.pop();
        i += 1;
      } else if (char === ',') {
        i += 1;
        skipWhitespace();
        if (text[i] === '}' || text[i] === ']') return at(i, `JSON allows no comma before ${JSON.stringify(text[i])}`);
        expect = container === '{' ? 'key' : 'value';
      } else {
        return at(i, `expected ',' or '${close}' after ${container === '{' ? 'a property value' : 'an array element'}, got ${found(i)}`);
      }
    }
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (const char of before) if (char === '\n') line += 1;
  return { line, column: [...before.slice(lineStart)].length + 1 };
}

/**
 * Parses kwargs JSON. `source` names where it came from in messages (`--kwargs`, `--kwargs-file x`,
 * `stdin`). Throws a {@link UsageError} that says where the JSON is wrong, or that it is not an object.
 */
export function parseKwargs(text: string, source: string): Record<string, unknown> {
  // Editors on Windows start files with a byte-order mark, which JSON.parse refuses.
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    const found = findJsonSyntaxError(json);
    if (found) throw new UsageError(`${source} is not valid JSON: at line ${found.line}, column ${found.column}: ${found.problem}`);
    // The scanner and JSON.parse disagree (a bug in one of them): fall back on JSON.parse's own words.
    throw new UsageError(`${source} is not valid JSON: ${terminalSafeText((error as Error).message)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new UsageError(`${source} must be a JSON object like {"to": "ann@example.com"}, got ${kind}`);
  }
  return value as Record<string, unknown>;
}

/** What a TTY stdin prints before it is read: otherwise `put tube f -` would wait without a word. */
export const STDIN_HINT = 'reading kwargs from stdin; end with Ctrl-D';

/**
 * Reads `input` to its end, or stops once it holds more than `limitBytes`: an endless stream (a FIFO,
 * `/dev/zero`, `yes |`) or a 50 MB file must not be read whole before the size check refuses it.
 * Resolves to the bytes, or to undefined when the limit was passed.
 */
export async function readAtMost(input: NodeJS.ReadableStream, limitBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += bytes.length;
    if (size > limitBytes) return undefined;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

/** The bytes as text; invalid UTF-8 is refused, since decoding would silently send U+FFFD instead. */
export function decodeUtf8(bytes: Buffer, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${source} is not valid UTF-8 text (save it as UTF-8; JSON is always UTF-8)`);
  }
}

/** Reads a kwargs source with the server's `max-job-size` as its bound (a kwargs larger than that cannot fit in a job). */
async function readKwargsSource(input: NodeJS.ReadableStream, source: string, maxJobSize: number): Promise<string> {
  const bytes = await readAtMost(input, maxJobSize);
  if (bytes === undefined) {
    throw new UsageError(`${source} is larger than the server's max-job-size (${maxJobSize} bytes); stopped reading it`);
  }
  return decodeUtf8(bytes, source);
}

/** The `put` options, as commander parsed them. */
interface PutCommandOptions {
  kwargs?: string;
  kwargsFile?: string;
  priority?: number;
  delay?: number;
  ttr?: number;
  json?: boolean;
  url?: string;
  server?: string;
  jobs?: string;
}

/** Checks that the command line names at most one kwargs source. */
function checkKwargsSources(stdin: string | undefined, options: PutCommandOptions): void {
  if (stdin !== undefined && stdin !== '-') {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(stdin)}: the only argument after FUNC_NAME is - (read the kwargs from stdin)`,
    );
  }
  const sources = [stdin !== undefined, options.kwargs !== undefined, options.kwargsFile !== undefined].filter(Boolean).length;
  if (sources > 1) throw new UsageError('give the kwargs once: --kwargs JSON, --kwargs-file PATH or - (stdin)');
}

/**
 * Reads the kwargs from the one place the command line names, or `{}`. A file or stdin is read only up
 * to `maxJobSize` bytes, which is why this runs once the server has said what its limit is.
 */
async function kwargsOf(stdin: string | undefined, options: PutCommandOptions, maxJobSize: number): Promise<Record<string, unknown>> {
  if (options.kwargs !== undefined) return parseKwargs(options.kwargs, '--kwargs');
  if (options.kwargsFile !== undefined) {
    const where = `--kwargs-file ${JSON.stringify(options.kwargsFile)}`;
    let file: FileHandle;
    try {
      file = await open(options.kwargsFile, 'r');
    } catch (error) {
      throw new UsageError(`cannot read ${where}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    try {
      return parseKwargs(await readKwargsSource(file.createReadStream({ autoClose: false }), where, maxJobSize), where);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`cannot read ${where}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    } finally {
      await file.close().catch(() => undefined);
    }
  }
  if (stdin === '-') {
    if (process.stdin.isTTY) process.stderr.write(`${STDIN_HINT}\n`);
    return parseKwargs(await readKwargsSource(process.stdin, 'stdin', maxJobSize), 'stdin');
  }
  return {};
}

/** A commander parser for a put option, checked by the library's own validator (so `--ttr 1` says why). */
function putOption(name: keyof PutOptions): (value: string) => number {
  return (value) => {
    // Digits become a number; anything else goes to the validator as the string it is, which it refuses
    // with the range in the message ("-1" is not "a number below 0": Number() would also take "1e3", "0x10").
    const parsed: unknown = /^\s*[0-9]+\s*$/.test(value) ? Number(value) : value;
    try {
      validatePutOptions({ [name]: parsed } as PutOptions);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    return parsed as number;
  };
}

/**
 * The check of the kwargs beyond the envelope, given to the admin layer: with `--jobs`, the task's schema
 * (the task itself was found before connecting). It throws KwargsValidationError, exit 2 with the issues.
 */
function kwargsCheckFor(task: RegisteredTask | undefined): KwargsCheck | undefined {
  if (task === undefined) return undefined;
  return async ({ kwargs }) => {
    await assertValidKwargs(task, kwargs);
    return kwargs;
  };
}

/** Puts the job and prints its id. */
async function putJob(
  output: Output,
  tube: string,
  funcName: string,
  stdin: string | undefined,
  options: PutCommandOptions,
  url?: string,
): Promise<void> {
  if (funcName.trim() === '') throw new UsageError('FUNC_NAME must not be empty: give the name the task was registered under');
  checkKwargsSources(stdin, options);
  // With --jobs, a job no worker could run (unregistered task, kwargs its schema refuses) is refused here.
  const task = options.jobs === undefined ? undefined : await loadRegisteredTask(options.jobs, tube, funcName);
  // Inline kwargs are checked before connecting: a bad call fails the same way whether or not a server is up.
  if (options.kwargs !== undefined) {
    const kwargs = parseKwargs(options.kwargs, '--kwargs');
    encodeEnvelope(funcName, tube, kwargs);
    if (task) await assertValidKwargs(task, kwargs);
  }
  const check = kwargsCheckFor(task);
  const adminOptions: AdminOptions = { ...serverOf(options), ...(check === undefined ? {} : { checkKwargs: check }) };
  const { result, several } = await withAdmin(
    url,
    async (admin) => {
      // A file or stdin is read only up to what the server takes, so its limit comes first.
      const kwargs = await kwargsOf(stdin, options, await admin.maxJobSize());
      const put = await admin.put({ tube, funcName, kwargs, priority: options.priority, delay: options.delay, ttr: options.ttr });
      return { result: put, several: admin.several };
    },
    adminOptions,
  );
  if (options.json) {
    const json: PutJson = several
      ? { id: result.id, tube, func_name: funcName, server: result.server }
      : { id: result.id, tube, func_name: funcName };
    printJson(output, json);
    return;
  }
  output.print(
    `put job ${result.id} into tube ${tube}: func_name ${terminalSafeJson(funcName)}, priority ${result.priority}, delay ${result.delaySeconds}s, ttr ${result.ttrSeconds}s`,
  );
}

/** Registers `put`. */
export function registerPutCommand(program: Command, output: Output): void {
  program
    .command('put')
    .description('put a job for FUNC_NAME into TUBE, in the standard envelope, and print its id')
    .argument('<tube>', 'the tube', parseTube)
    .argument('<func_name>', 'the registered task name')
    .argument('[-]', 'read the kwargs JSON from stdin')
    .option('--kwargs <json>', 'the kwargs as a JSON object (default: {})')
    .option('--kwargs-file <path>', 'read the kwargs JSON object from a file')
    .addOption(
      new Option('--priority <n>', '0 (most urgent) to 4294967295').argParser(putOption('priority')).default(PUT_DEFAULTS.priority),
    )
    .addOption(new Option('--delay <seconds>', 'seconds before the job is ready').argParser(putOption('delay')).default(PUT_DEFAULTS.delay))
    .addOption(
      new Option('--ttr <seconds>', 'seconds a worker may hold the job, at least 2').argParser(putOption('ttr')).default(PUT_DEFAULTS.ttr),
    )
    .option(
      '-j, --jobs <dir>',
      'load this jobs directory and refuse the job unless its task is registered and its schema accepts the kwargs',
    )
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .addHelpText(
      'after',
      `\nWith several servers (--url a,b,c) the job goes to one of them in turn, as a producer's puts do (--server picks one).\n\nExamples:\n  bsworker put emails send_email --kwargs '{"to": "ann@example.com"}'\n  bsworker put reports build_report --kwargs-file report.json --priority 10 --delay 60\n  echo '{"n": 1}' | bsworker put emails send_email - --json`,
    )
    .action(
      opsAction(async (tube: string, funcName: string, stdin: string | undefined, options: PutCommandOptions, command: Command) => {
        await putJob(output, tube, funcName, stdin, options, urlOf(command, options));
      }),
    );
}
