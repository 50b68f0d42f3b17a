/**
 * Checks every argument before a byte reaches the wire. beanstalkd does not skip the body of a `put`
 * it rejects: it parses that body as the next command, so a malformed put can run a job body such as
 * `delete 3` as a command. Nothing malformed may ever be written.
 */

/** The largest value of beanstalkd's 32-bit priority, delay, ttr and timeout fields. */
export const UINT32_MAX = 4_294_967_295;

/** The longest tube name beanstalkd accepts, in bytes. */
export const MAX_TUBE_NAME_BYTES = 200;

// Letters, digits and `- + / ; . $ _ ( )`; a name may not begin with a hyphen.
const TUBE_NAME = /^[A-Za-z0-9+/;.$_()][A-Za-z0-9\-+/;.$_()]*$/;

// beanstalkd job ids are unsigned 64-bit decimals; anything else would be injected into the command line.
const MAX_JOB_ID = 2n ** 64n - 1n;
const JOB_ID = /^[0-9]{1,20}$/;

/** Describes a value for an error message: `` `-1` (number) ``. */
export function describe(value: unknown): string {
  let shown: string;
  if (typeof value === 'string') shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  else if (typeof value === 'bigint') shown = `${value}n`;
  else if (typeof value === 'symbol' || typeof value === 'function') shown = String(value);
  else {
    try {
      shown = JSON.stringify(value) ?? String(value);
    } catch {
      shown = Object.prototype.toString.call(value);
    }
    if (typeof value === 'number' && !Number.isFinite(value)) shown = String(value);
  }
  return `\`${shown}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}

/**
 * Throws unless `name` is a tube name beanstalkd accepts: 1 to 200 bytes of `A-Za-z0-9-+/;.$_()`,
 * not starting with `-`.
 */
export function assertTubeName(name: unknown, argument = 'tube'): asserts name is string {
  if (typeof name !== 'string') {
    throw new TypeError(`Expected \`${argument}\` to be a tube name (a string), got ${describe(name)}`);
  }
  if (name.length === 0) {
    throw new RangeError(`Expected \`${argument}\` to be a tube name of 1 to ${MAX_TUBE_NAME_BYTES} bytes, got an empty string`);
  }
  // The pattern admits only ASCII, so the string length is the byte length.
  if (name.length > MAX_TUBE_NAME_BYTES) {
    throw new RangeError(
      `Expected \`${argument}\` to be a tube name of at most ${MAX_TUBE_NAME_BYTES} bytes, got ${Buffer.byteLength(name)} bytes (${describe(name)})`,
    );
  }
  if (!TUBE_NAME.test(name)) {
    const hint = name.startsWith('-') ? 'it may not start with `-`' : 'allowed are letters, digits and `- + / ; . $ _ ( )`';
    throw new TypeError(`Expected \`${argument}\` to be a valid tube name, got ${describe(name)}: ${hint}`);
  }
}

/** Throws unless `value` is an integer in `min..max`. The message names `argument` and the value. */
export function assertInteger(value: unknown, argument: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') {
    throw new TypeError(`Expected \`${argument}\` to be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected \`${argument}\` to be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
}

/** Throws unless `priority` is an integer 0..2^32-1 (0 is the most urgent). */
export function assertPriority(priority: unknown, argument = 'priority'): asserts priority is number {
  assertInteger(priority, argument, 0, UINT32_MAX);
}

/** Throws unless `seconds` is a whole number of seconds 0..2^32-1. */
export function assertSeconds(seconds: unknown, argument: string): asserts seconds is number {
  assertInteger(seconds, argument, 0, UINT32_MAX);
}

/**
 * Throws unless `ttr` is 2..2^32-1 seconds. beanstalkd raises 0 to 1, and a TTR of 1 always falls inside
 * the server's one-second safety margin, so the job would be handed out again while it runs.
 */
export function assertTtr(ttr: unknown, argument = 'ttr'): asserts ttr is number {
  if (ttr === 0 || ttr === 1) {
    throw new RangeError(
      `Expected \`${argument}\` to be at least 2 seconds, got ${describe(ttr)}: beanstalkd keeps a 1-second safety margin, so a shorter TTR hands the job to another worker while it runs`,
    );
  }
  assertInteger(ttr, argument, 2, UINT32_MAX);
}

/** Throws unless `id` is a beanstalkd job id: a decimal string (or a safe non-negative integer). */
export function normaliseJobId(id: unknown, argument = 'id'): string {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return String(id);
  // beanstalkd answers BAD_FORMAT for an id past 2^64-1, which would cost the connection.
  // Fewer than 20 digits is always below 2^64-1: the BigInt (an allocation per call, and this runs for
  // every delete) is needed only for 20-digit ids.
  if (typeof id === 'string' && JOB_ID.test(id) && (id.length < 20 || BigInt(id) <= MAX_JOB_ID)) return id;
  throw new TypeError(`Expected \`${argument}\` to be a job id (a whole number from 0 to 2^64-1), got ${describe(id)}`);
}

/** Throws unless `body` fits in the server's `max-job-size`, counted in bytes. */
export function assertBodySize(body: Buffer, maxJobSize: number): void {
  assertBodyLength(body.length, maxJobSize);
}

/** {@link assertBodySize} for a body measured but not kept (putMany checks sizes before it encodes again). */
export function assertBodyLength(bytes: number, maxJobSize: number): void {
  if (bytes > maxJobSize) {
    throw new RangeError(`Expected the job body to be at most ${maxJobSize} bytes (the server's max-job-size), got ${bytes} bytes`);
  }
}
