/**
 * Links: a task and its kwargs, not yet put, as chains and groups take them. `task.with(kwargs)` makes
 * one; `task.pipe('key', kwargs)` makes one that receives the previous link's return value as
 * `kwargs.key`. The types carry each link's return value and what it accepts, so that
 * `queue.chain(a.with(...), b.pipe('x', ...))` fails to compile when `a`'s return value does not fit
 * `b`'s `x`.
 */
import { validatePutOptions } from '../tasks/put-options.js';
import type { PutDefaults, TaskMetadata } from '../tasks/types.js';

/** Brands a link (Symbol.for: a link made by another copy of bsworker is still one). */
const LINK = Symbol.for('bsworker.link');

declare const NO_INPUT: unique symbol;
/** The input type of a link that takes no previous value. */
export type NoInput = typeof NO_INPUT;

declare const NO_PREVIOUS: unique symbol;
/** What comes before the first link: nothing a `pipe` link could accept. */
export type NoPrevious = typeof NO_PREVIOUS;

/** A task call waiting to be part of a chain or a group. `R` is its return value; `In` what it takes from the link before. */
export interface Link<R = unknown, In = NoInput> {
  readonly [LINK]: true;
  readonly metadata: TaskMetadata;
  readonly kwargs: Record<string, unknown>;
  /** The kwargs key that receives the previous link's return value. */
  readonly pipe: string | undefined;
  readonly options: PutDefaults | undefined;
  /** Types only: never set. */
  readonly types?: { readonly result: R; readonly input: (input: In) => void };
}

/** Any link. */
// biome-ignore lint/suspicious/noExplicitAny: `any` lets every link fit; the checks below recover the types.
export type AnyLink = Link<any, any>;

/** A link's return value. */
export type LinkResult<L> = L extends Link<infer R, infer _In> ? R : never;
/** What a link takes from the link before (NoInput when it takes nothing). */
export type LinkInput<L> = L extends Link<infer _R, infer In> ? In : never;

/** The error a mismatched link is replaced with, so the compiler names the problem. */
export interface PipeMismatch<Previous, Expected> {
  readonly 'the previous link returns': Previous;
  readonly 'but this link takes as its pipe key': Expected;
}

type Accepts<L extends AnyLink, Previous> = [LinkInput<L>] extends [NoInput]
  ? L
  : [Previous] extends [LinkInput<L>]
    ? L
    : PipeMismatch<Previous extends NoPrevious ? 'nothing: the first link cannot pipe' : Previous, LinkInput<L>>;

/** `L` checked link by link: each `pipe` link must accept what the link before returns. */
export type CheckedChain<L extends readonly AnyLink[], Previous = NoPrevious> = L extends readonly [
  infer Head extends AnyLink,
  ...infer Tail extends readonly AnyLink[],
]
  ? [Accepts<Head, Previous>, ...CheckedChain<Tail, LinkResult<Head>>]
  : [];

/** The return value of a chain: its last link's. */
export type ChainResult<L extends readonly AnyLink[]> = L extends readonly [...infer _Rest, infer Last] ? LinkResult<Last> : unknown;

/** Makes a link; checks its options and pipe key now, so a bad link fails where it is written. */
export function createLink(
  metadata: TaskMetadata,
  kwargs: unknown,
  pipe: string | undefined,
  options: PutDefaults | undefined,
): Link<unknown, unknown> {
  if (kwargs !== undefined && (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))) {
    throw new TypeError(
      `Expected the kwargs of a \`${metadata.name}\` link to be an object, got ${kwargs === null ? 'null' : typeof kwargs}`,
    );
  }
  if (pipe !== undefined && (typeof pipe !== 'string' || pipe === '' || pipe === '__proto__')) {
    throw new TypeError(`Expected the pipe key of a \`${metadata.name}\` link to be a non-empty kwargs key, got ${String(pipe)}`);
  }
  if (pipe !== undefined && kwargs !== undefined && Object.hasOwn(kwargs, pipe)) {
    throw new TypeError(`A \`${metadata.name}\` link pipes the previous value into \`${pipe}\`, so its kwargs must not set \`${pipe}\``);
  }
  validatePutOptions(options, '', DEFAULT_KEYS);
  return Object.freeze({
    [LINK]: true as const,
    metadata,
    kwargs: (kwargs ?? {}) as Record<string, unknown>,
    pipe,
    options,
  });
}

const DEFAULT_KEYS: ReadonlySet<string> = new Set(['priority', 'delay', 'ttr']);

/** True for a link made by {@link createLink}. */
export function isLink(value: unknown): value is AnyLink {
  return typeof value === 'object' && value !== null && (value as { [LINK]?: unknown })[LINK] === true;
}
