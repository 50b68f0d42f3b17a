/**
 * Putting chains and groups: the producer's side. A chain is put as its first link, carrying the rest
 * in `meta.chain`; each worker that finishes a link puts the next (see ./advance.ts). A group is put as
 * a delayed callback (when it has one), one barrier job per member in the group's own barrier tube,
 * then the members, each naming its barrier job and the callback: all on one server, so the member that
 * empties the barrier can read its counts and kick the callback on the connection it already holds.
 */
import { randomBytes } from 'node:crypto';
import type { PutParams } from '../beanstalk/types.js';
import { toWireKwargs } from '../envelope/json.js';
import { type ResultJob, settledResult } from '../results/result-job.js';
import { splitJobId } from '../servers/job-id.js';
import { KwargsValidationError } from '../tasks/errors.js';
import { resolvePutParams } from '../tasks/put-options.js';
import { isThenable, validateKwargs } from '../tasks/schema.js';
import type { PutDefaults, PutOptions, TaskMetadata } from '../tasks/types.js';
import { type AnyLink, isLink, type LinkInput, type LinkResult, type NoInput, type PipeMismatch } from './links.js';
import { MAX_CHAIN_LINKS, type WireLink } from './meta.js';

/** What putting a flow needs from its JobQueue. */
export interface FlowQueue {
  readonly inline: boolean;
  /** The queue's put defaults, below each link's and task's. */
  readonly putDefaults: PutDefaults | undefined;
  /** Puts a task's job with `meta`, as `put` does (schema check included); `result` asks for its result. */
  putTask(metadata: TaskMetadata, kwargs: unknown, options: PutOptions | undefined, meta?: Record<string, unknown>): Promise<string>;
  /** {@link putTask} with a reply, resolving to its {@link ResultJob}. */
  putForResult(
    metadata: TaskMetadata,
    kwargs: unknown,
    options: PutOptions | undefined,
    meta: Record<string, unknown>,
  ): Promise<ResultJob<unknown>>;
  /** Puts a body that is no task's job (a barrier job) into `tube`, on the server `key` routes to. */
  putRaw(tube: string, text: string, params: PutParams, key: string): Promise<string>;
  /** Runs a task here and now as an inline put would; resolves to its id and return value. */
  runInline(metadata: TaskMetadata, kwargs: Record<string, unknown>): Promise<{ readonly id: string; readonly value: unknown }>;
}

/** How a chain or a group is put: a routing key (with several servers) and whether to wait for a result. */
export interface FlowPutOptions {
  /** With several servers, the server this key hashes to; a group always keeps its jobs on one server. */
  readonly key?: string;
  /** Resolve to a {@link ResultJob} of the chain's last link, or of a group's callback. */
  readonly result?: boolean;
}

/**
 * How long a group's callback is delayed at first, in seconds: the last member's kick normally starts
 * it long before; this is only the fallback for a kick that was lost (a member died between its barrier
 * delete and the kick), after which it checks its barrier and waits again if members are left.
 */
export const CHORD_FALLBACK_SECONDS = 60;

const FLOW_KEYS = new Set(['key', 'result']);

function checkFlowOptions(options: FlowPutOptions | undefined, what: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected the options of ${what}.put() to be an object`);
  for (const key of Object.keys(options)) {
    if (!FLOW_KEYS.has(key)) throw new TypeError(`Unknown option \`${key}\` of ${what}.put(); expected \`key\`, \`result\``);
  }
  if (options.result !== undefined && typeof options.result !== 'boolean') throw new TypeError('Expected `result` to be a boolean');
}

function checkLinks(links: readonly unknown[], what: string): asserts links is readonly AnyLink[] {
  if (links.length === 0) throw new TypeError(`${what} needs at least one link: task.with(kwargs)`);
  for (const [index, link] of links.entries()) {
    if (!isLink(link)) {
      throw new TypeError(`${what}: argument ${index + 1} is not a link; make one with task.with(kwargs) or task.pipe(key, kwargs)`);
    }
  }
}

/** Puts a chain; resolves to its first job's id, or to a ResultJob of its last link. */
export async function putChain(
  queue: FlowQueue,
  links: readonly unknown[],
  options: FlowPutOptions | undefined,
): Promise<string | ResultJob<unknown>> {
  checkLinks(links, 'queue.chain');
  checkFlowOptions(options, 'chain');
  if (links.length > MAX_CHAIN_LINKS + 1) throw new RangeError(`A chain holds at most ${MAX_CHAIN_LINKS + 1} links, got ${links.length}`);
  const [first, ...rest] = links as [AnyLink, ...AnyLink[]];
  if (first.pipe !== undefined) throw new TypeError('The first link of a chain has no previous link to pipe from: use task.with(kwargs)');
  if (queue.inline) return runChainInline(queue, links, options);
  await checkSchemas(rest);
  const next = rest.map((link) => wireLink(link, queue.putDefaults));
  const meta = { chain: { index: 0, of: links.length, next } };
  const putOptions = { ...first.options, ...(options?.key === undefined ? {} : { key: options.key }) };
  if (options?.result === true) return queue.putForResult(first.metadata, first.kwargs, putOptions, meta);
  return queue.putTask(first.metadata, first.kwargs, putOptions, meta);
}

/** A link as it travels in `meta.chain.next`: kwargs checked for JSON, and its put parameters resolved here. */
function wireLink(link: AnyLink, defaults: PutDefaults | undefined): WireLink {
  const { metadata } = link;
  const params = resolvePutParams(link.options, metadata.options, defaults);
  let kwargs: Record<string, unknown>;
  try {
    kwargs = toWireKwargs(link.kwargs);
  } catch (error) {
    throw new TypeError(`the kwargs of the \`${metadata.name}\` link: ${(error as Error).message}`);
  }
  return {
    func_name: metadata.name,
    tube: metadata.tube,
    kwargs,
    ...(link.pipe === undefined ? {} : { pipe: link.pipe }),
    priority: params.priority,
    delay: params.delaySeconds,
    ttr: params.ttrSeconds,
  };
}

/** Checks the kwargs of schema links that do not wait for a piped value (those are checked when they run). */
async function checkSchemas(links: readonly AnyLink[]): Promise<void> {
  for (const link of links) {
    if (link.metadata.options.schema === undefined || link.pipe !== undefined) continue;
    const checked = validateKwargs(link.metadata, toWireKwargs(link.kwargs));
    const result = isThenable(checked) ? await checked : checked;
    if (!result.ok) throw new KwargsValidationError(link.metadata, result.issues);
  }
}

async function runChainInline(
  queue: FlowQueue,
  links: readonly AnyLink[],
  options: FlowPutOptions | undefined,
): Promise<string | ResultJob<unknown>> {
  let value: unknown;
  let firstId = '';
  for (const [index, link] of links.entries()) {
    const kwargs = link.pipe === undefined ? link.kwargs : { ...link.kwargs, [link.pipe]: value };
    const ran = await queue.runInline(link.metadata, kwargs);
    if (index === 0) firstId = ran.id;
    value = ran.value;
  }
  return options?.result === true ? settledResult(firstId, { ok: true, value }) : firstId;
}

/** The ids of a group's jobs as they were put. */
export interface GroupIds {
  /** The members' job ids, in the order given. */
  readonly members: readonly string[];
  /** The callback's job id, when the group has one. */
  readonly callback: string | undefined;
}

/**
 * A group whose put failed part-way: what was put stays (the callback, if put, waits for members that
 * were never put, re-checking its barrier), and this says what, so an operator can delete it.
 */
export class GroupPutError extends Error {
  constructor(
    cause: unknown,
    /** The group's barrier tube. */
    readonly barrierTube: string,
    /** The callback's id, when it was put. */
    readonly callbackId: string | undefined,
    /** How many barrier jobs were put. */
    readonly barriersPut: number,
    /** The members put, in order. */
    readonly memberIds: readonly string[],
    members: number,
  ) {
    super(
      `the group was put only in part (${(cause as Error)?.message ?? String(cause)}): ${callbackId === undefined ? 'no callback' : `callback ${callbackId}`}, ${barriersPut} of ${members} barrier jobs in ${barrierTube}, ${memberIds.length} of ${members} members`,
      { cause },
    );
    this.name = 'GroupPutError';
  }
}

/** Puts a group, with its callback when there is one; see the file's comment for the order. */
export async function putGroup(
  queue: FlowQueue,
  members: readonly unknown[],
  callback: AnyLink | undefined,
  options: FlowPutOptions | undefined,
): Promise<GroupIds | ResultJob<unknown>> {
  checkLinks(members, 'queue.group');
  checkFlowOptions(options, 'group');
  for (const link of members as AnyLink[]) {
    if (link.pipe !== undefined) {
      throw new TypeError(
        `A group's links run side by side, with no previous link to pipe from: use task.with(kwargs) for \`${link.metadata.name}\``,
      );
    }
  }
  if (callback?.options?.delay !== undefined) {
    throw new TypeError("A group's callback runs when its members are done; it takes no `delay`");
  }
  if (options?.result === true && callback === undefined) {
    throw new TypeError('A group without a callback has no single result: give it one with group.callback(task.with(kwargs))');
  }
  if (queue.inline) return runGroupInline(queue, members as AnyLink[], callback, options);
  await checkSchemas(members as AnyLink[]);
  const group = randomBytes(8).toString('hex');
  const tube = `bsworker.group.${group}`;
  // One server for the whole group: the barrier is counted on the server the members run on.
  const key = options?.key ?? group;
  // A callback made with pipe(key) takes the members' return values, collected from a results tube.
  const resultsTube = callback?.pipe === undefined ? undefined : `${tube}.results`;
  let callbackId: string | undefined;
  let result: ResultJob<unknown> | undefined;
  const barriers: string[] = [];
  const ids: string[] = [];
  try {
    if (callback !== undefined) {
      const meta = {
        chord:
          resultsTube === undefined
            ? { tube }
            : { tube, results: { tube: resultsTube, members: members.length, pipe: callback.pipe as string } },
      };
      const putOptions = { ...callback.options, delay: CHORD_FALLBACK_SECONDS, key };
      if (options?.result === true) {
        result = await queue.putForResult(callback.metadata, callback.kwargs, putOptions, meta);
        callbackId = result.id;
      } else callbackId = await queue.putTask(callback.metadata, callback.kwargs, putOptions, meta);
    }
    const barrierParams: PutParams = { priority: 0, delaySeconds: 0, ttrSeconds: 60 };
    for (let index = 0; index < members.length; index += 1) {
      barriers.push(await queue.putRaw(tube, JSON.stringify({ group, member: index }), barrierParams, key));
    }
    for (const [index, member] of (members as AnyLink[]).entries()) {
      const meta = {
        group: {
          tube,
          barrier: splitJobId(barriers[index] as string).id,
          ...(callbackId === undefined ? {} : { callback: splitJobId(callbackId).id }),
          ...(resultsTube === undefined ? {} : { results: resultsTube, index }),
        },
      };
      ids.push(await queue.putTask(member.metadata, member.kwargs, { ...member.options, key }, meta));
    }
  } catch (error) {
    if (callbackId === undefined && barriers.length === 0) throw error;
    throw new GroupPutError(error, tube, callbackId, barriers.length, ids, members.length);
  }
  return result ?? { members: ids, callback: callbackId };
}

async function runGroupInline(
  queue: FlowQueue,
  members: readonly AnyLink[],
  callback: AnyLink | undefined,
  options: FlowPutOptions | undefined,
): Promise<GroupIds | ResultJob<unknown>> {
  const ids: string[] = [];
  const values: unknown[] = [];
  for (const member of members) {
    const ran = await queue.runInline(member.metadata, member.kwargs);
    ids.push(ran.id);
    values.push(ran.value);
  }
  if (callback === undefined) return { members: ids, callback: undefined };
  const kwargs = callback.pipe === undefined ? callback.kwargs : { ...callback.kwargs, [callback.pipe]: values };
  const ran = await queue.runInline(callback.metadata, kwargs);
  if (options?.result === true) {
    return settledResult(ran.id, { ok: true, value: ran.value });
  }
  return { members: ids, callback: ran.id };
}

/** `queue.chain(...)`: links put one after another, each once the one before has succeeded. */
export interface Chain<R> {
  /** How many links. */
  readonly length: number;
  /** Puts the chain, asking for the last link's result. */
  put(options: FlowPutOptions & { readonly result: true }): Promise<ResultJob<R>>;
  /** Puts the chain (its first link); resolves to the first link's job id. */
  put(options?: FlowPutOptions): Promise<string>;
}

/** `queue.group(...)`: jobs that run side by side. `T` is what each member returns. */
export interface Group<T = unknown> {
  /** How many members. */
  readonly length: number;
  /** Puts the members; resolves to their ids, in order. */
  put(options?: Omit<FlowPutOptions, 'result'>): Promise<GroupIds>;
  /**
   * The same group with a callback that runs once, after every member has succeeded (a chord). Made
   * with `task.pipe('key', kwargs)`, the callback gets the members' return values, in order, as
   * `kwargs.key` (type-checked: `key` must accept an array of what the members return).
   */
  callback<L extends AnyLink>(callback: L & AcceptsResults<L, T[]>): Chord<LinkResult<L>>;
}

/** `L`, when its pipe key (if any) accepts `Results`; else a type naming the mismatch. */
export type AcceptsResults<L extends AnyLink, Results> = [LinkInput<L>] extends [NoInput]
  ? L
  : [Results] extends [LinkInput<L>]
    ? L
    : PipeMismatch<Results, LinkInput<L>>;

/** A group with a callback. */
export interface Chord<R> {
  /** Puts the group and its callback, asking for the callback's result. */
  put(options: FlowPutOptions & { readonly result: true }): Promise<ResultJob<R>>;
  /** Puts the group and its callback; resolves to their ids. */
  put(options?: FlowPutOptions): Promise<GroupIds>;
}

/** Builds the object `queue.chain(...)` returns. */
export function makeChain<R>(queue: FlowQueue, links: readonly unknown[]): Chain<R> {
  checkLinks(links, 'queue.chain');
  return {
    length: links.length,
    put: ((options?: FlowPutOptions) => putChain(queue, links, options)) as Chain<R>['put'],
  };
}

/** Builds the object `queue.group(...)` returns. */
export function makeGroup<T>(queue: FlowQueue, members: readonly unknown[]): Group<T> {
  checkLinks(members, 'queue.group');
  return {
    length: members.length,
    put: (options) => putGroup(queue, members, undefined, options) as Promise<GroupIds>,
    callback: <L extends AnyLink>(callback: L): Chord<LinkResult<L>> => {
      checkLinks([callback], 'group.callback');
      return { put: ((options?: FlowPutOptions) => putGroup(queue, members, callback, options)) as Chord<LinkResult<L>>['put'] };
    },
  };
}
