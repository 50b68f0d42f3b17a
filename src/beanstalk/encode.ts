/**
 * The bytes of every command bsworker writes to beanstalkd: pure functions, no I/O. Arguments are not
 * checked here: BeanstalkConnection validates each one first (see ./validate.ts), because a malformed
 * `put` makes beanstalkd run its body as commands. Names and ids are ASCII once validated, so a
 * command line is written as latin1, one byte per character.
 *
 * Command lines are strings: the pipeline gathers the commands of one synchronous step into one write,
 * and joining strings is cheaper than copying buffers. A `put` carries a body: a Buffer, or, for a
 * body that is pure ASCII, a string written inside the command line (see {@link PutBody}).
 */
import type { PutParams } from './types.js';

/**
 * A job body: bytes, or text that is pure ASCII (every character below U+0080), so that its length in
 * characters is its length in bytes and latin1 writes it byte for byte. The connection refuses any
 * other string before a byte is written: a `<bytes>` count that is not the body's byte length would
 * make beanstalkd run the rest of the body as commands.
 */
export type PutBody = Buffer | string;

/**
 * The longest body kept as text. Past it a body is sent as a Buffer: a string the socket cannot take at
 * once is copied into a buffer of its own while the put still holds the string for a retry, so large
 * bodies were held twice (putMany of 3,000 jobs of 60 KB peaked 455 MB over its start, 270 MB with
 * Buffers). Below it, joining a burst into one string and one write is the faster path.
 */
export const MAX_TEXT_BODY = 16 * 1024;

/** True when `text` is pure ASCII: then, and only then, UTF-8 spends exactly one byte per character. */
export function isAscii(text: string): boolean {
  // A character at or past U+0080 (a lone surrogate included) takes 2 to 4 bytes of UTF-8.
  return Buffer.byteLength(text, 'utf8') === text.length;
}

/**
 * `put <pri> <delay> <ttr> <bytes>\r\n<body>\r\n` for an ASCII body, as one string: the pipeline joins
 * the commands of a burst into one string and one write, with no Buffer per put. `body` must be ASCII
 * (checked by the caller, see {@link isAscii}).
 */
export function encodePutText(body: string, params: PutParams): string {
  return `put ${params.priority} ${params.delaySeconds} ${params.ttrSeconds} ${body.length}\r\n${body}\r\n`;
}

const CR = 0x0d;
const LF = 0x0a;

/** `put <pri> <delay> <ttr> <bytes>\r\n<body>\r\n` in one buffer: one allocation and one copy of the body. */
export function encodePut(body: Buffer, params: PutParams): Buffer {
  const header = `put ${params.priority} ${params.delaySeconds} ${params.ttrSeconds} ${body.length}\r\n`;
  const bytes = Buffer.allocUnsafe(header.length + body.length + 2);
  bytes.write(header, 0, 'latin1');
  body.copy(bytes, header.length);
  bytes[bytes.length - 2] = CR;
  bytes[bytes.length - 1] = LF;
  return bytes;
}

/** `reserve-with-timeout <seconds>`. */
export function encodeReserve(timeoutSeconds: number): string {
  return `reserve-with-timeout ${timeoutSeconds}\r\n`;
}

/** `reserve-job <id>` (beanstalkd 1.12 and later). */
export function encodeReserveJob(id: string): string {
  return `reserve-job ${id}\r\n`;
}

/** `delete <id>`. */
export function encodeDelete(id: string): string {
  return `delete ${id}\r\n`;
}

/** `release <id> <pri> <delay>`. */
export function encodeRelease(id: string, priority: number, delaySeconds: number): string {
  return `release ${id} ${priority} ${delaySeconds}\r\n`;
}

/** `bury <id> <pri>`. */
export function encodeBury(id: string, priority: number): string {
  return `bury ${id} ${priority}\r\n`;
}

/** `touch <id>`. */
export function encodeTouch(id: string): string {
  return `touch ${id}\r\n`;
}

/** `peek <id>`. */
export function encodePeek(id: string): string {
  return `peek ${id}\r\n`;
}

/** `kick-job <id>`. */
export function encodeKickJob(id: string): string {
  return `kick-job ${id}\r\n`;
}

/** `stats-job <id>`. */
export function encodeStatsJob(id: string): string {
  return `stats-job ${id}\r\n`;
}

/** `kick <bound>`. */
export function encodeKick(bound: number): string {
  return `kick ${bound}\r\n`;
}

/** A command that names one tube: `use`, `watch`, `ignore` or `stats-tube`. */
export function encodeTubeCommand(command: 'use' | 'watch' | 'ignore' | 'stats-tube', tube: string): string {
  return `${command} ${tube}\r\n`;
}

/** `pause-tube <tube> <seconds>`. */
export function encodePauseTube(tube: string, seconds: number): string {
  return `pause-tube ${tube} ${seconds}\r\n`;
}

/** A command without arguments: `peek-ready`, `stats`, `list-tubes`... */
export function encodeBare(command: 'peek-ready' | 'peek-delayed' | 'peek-buried' | 'stats' | 'list-tubes' | 'list-tubes-watched'): string {
  return `${command}\r\n`;
}
