/**
 * Task schemas: any validation library that implements Standard Schema v1 (https://standardschema.dev),
 * such as zod, valibot or arktype. bsworker depends on none of them: the interface below is the part of
 * the standard it reads, written out here, and TypeScript matches a library's schemas to it by shape.
 *
 * One function, {@link validateKwargs}, checks kwargs for every caller (put, the worker, the HTTP API,
 * `bsworker put`), so they all accept and refuse the same jobs and report the same issues.
 */
import { capText, escapeForTerminal } from '../logging/text.js';

/**
 * The Standard Schema v1 interface, as bsworker reads it: an object with a `~standard` property whose
 * `validate` checks a value and returns (or resolves to) either the parsed value or a list of issues.
 * `Input` is what the schema accepts, `Output` what it gives back (after defaults and transforms).
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    /** The version of the standard: 1. */
    readonly version: 1;
    /** The library that made the schema (`zod`, `valibot`, ...). */
    readonly vendor: string;
    /** Checks `value`; may return a promise (an async refinement). */
    readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
    /** Carries the input and output types for inference; never read at run time. */
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** What a {@link StandardSchemaV1}'s `validate` returns: the value, or the issues when the input is not valid. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] };

/** One problem a {@link StandardSchemaV1} found in its input. */
export interface StandardSchemaIssue {
  readonly message: string;
  /** Where in the input: keys and indexes, bare or wrapped as `{ key }`. */
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/** Any schema a task can declare. */
// biome-ignore lint/suspicious/noExplicitAny: any input and output type must fit; the helpers below recover them.
export type KwargsSchema = StandardSchemaV1<any, any>;

/** The kwargs a schema accepts: the type of `put`'s kwargs for a task that declares it. */
export type SchemaInput<S extends KwargsSchema> = NonNullable<S['~standard']['types']>['input'];

/** The value a schema gives back: the type of the kwargs the task function receives. */
export type SchemaOutput<S extends KwargsSchema> = NonNullable<S['~standard']['types']>['output'];

/**
 * One problem with a job's kwargs, as bsworker keeps and reports it: plain JSON (it travels in failure
 * records and HTTP replies), its message capped, its path as keys and indexes (empty for kwargs itself).
 */
export interface KwargsIssue {
  readonly message: string;
  readonly path: readonly (string | number)[];
}

/** What {@link validateKwargs} answers. */
export type KwargsValidation =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly issues: readonly KwargsIssue[] };

/**
 * Caps on what is kept of a schema's issues. A job body is untrusted and issue messages can quote it
 * (an unknown key, say): a hostile job must not make a failure record or a log line huge.
 */
export const ISSUE_LIMITS = Object.freeze({
  /** Issues kept; a last one says how many more there were. */
  issues: 20,
  /** Characters kept of each message. */
  messageChars: 300,
  /** Segments kept of each path. */
  pathSegments: 16,
  /** Characters kept of each path key. */
  keyChars: 100,
  /** Characters of the one-line summary ({@link summarizeIssues}). */
  summaryChars: 1_000,
});

/** Anything with a task's options: a registered task, or a task's metadata. */
export interface WithSchema {
  readonly options: { readonly schema?: KwargsSchema | undefined };
}

/**
 * Checks `kwargs` against the task's schema. Without a schema the kwargs are valid as they are. With
 * one, the answer is the schema's output value or its issues (normalised to {@link KwargsIssue}s);
 * it is a promise only when the schema's `validate` returned one. Never throws and never rejects: a
 * schema that throws, or returns something that is not a result, yields an issue saying so.
 */
export function validateKwargs(task: WithSchema, kwargs: unknown): KwargsValidation | Promise<KwargsValidation> {
  const schema = task.options.schema;
  if (schema === undefined) return { ok: true, value: kwargs };
  let result: unknown;
  try {
    result = schema['~standard'].validate(kwargs);
  } catch (error) {
    return thrown(error);
  }
  if (isThenable(result)) return Promise.resolve(result).then(readResult, thrown);
  return readResult(result);
}

/** True for a promise (or anything with a `then` method), the one case a caller must await. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function readResult(result: unknown): KwargsValidation {
  if (typeof result !== 'object' || result === null) {
    return invalid('the schema returned no result (its `~standard.validate` must return { value } or { issues })');
  }
  const { issues, value } = result as { issues?: unknown; value?: unknown };
  if (issues === undefined) return { ok: true, value };
  if (!Array.isArray(issues) || issues.length === 0) return invalid('the schema refused the kwargs without saying why');
  const kept = issues.slice(0, ISSUE_LIMITS.issues).map(normaliseIssue);
  if (issues.length > ISSUE_LIMITS.issues) kept.push({ message: `and ${issues.length - ISSUE_LIMITS.issues} more issues`, path: [] });
  return { ok: false, issues: kept };
}

function thrown(error: unknown): KwargsValidation {
  const message = error instanceof Error ? error.message : String(error);
  return invalid(`the schema threw: ${message}`);
}

function invalid(message: string): KwargsValidation {
  return { ok: false, issues: [{ message: capText(message, ISSUE_LIMITS.messageChars), path: [] }] };
}

function normaliseIssue(issue: unknown): KwargsIssue {
  const { message, path } = (typeof issue === 'object' && issue !== null ? issue : {}) as { message?: unknown; path?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : 'invalid';
  const segments = Array.isArray(path) ? path.slice(0, ISSUE_LIMITS.pathSegments).map(normaliseSegment) : [];
  return { message: capText(text, ISSUE_LIMITS.messageChars), path: segments };
}

function normaliseSegment(segment: unknown): string | number {
  const key = typeof segment === 'object' && segment !== null ? (segment as { key?: unknown }).key : segment;
  if (typeof key === 'number' && Number.isInteger(key)) return key;
  if (typeof key === 'symbol') return capText(key.description ?? 'symbol', ISSUE_LIMITS.keyChars);
  return capText(String(key), ISSUE_LIMITS.keyChars);
}

/** `kwargs.user.email`, `kwargs.items[2]`, `kwargs["odd key"]`: where an issue is, for people. */
export function formatIssuePath(path: readonly (string | number)[]): string {
  let text = 'kwargs';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) text += `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/**
 * The issues as one line, `kwargs.to: Invalid email; kwargs.n: Expected number`: every control and
 * bidi character escaped (messages can quote job data) and the whole capped, so it is safe in a log
 * line, a bury event's detail or a terminal.
 */
export function summarizeIssues(issues: readonly KwargsIssue[]): string {
  const line = issues.map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`).join('; ');
  return escapeForTerminal(capText(line, ISSUE_LIMITS.summaryChars));
}
