/**
 * The `meta` members that chains, groups and results add to an envelope, and how a worker reads them
 * back from an untrusted body.
 *
 * Every member is optional and a job without any is exactly the three-member envelope, so a producer in
 * another language that knows nothing of them still interoperates; one that wants a reply or a chain
 * writes these plain JSON shapes (the README's "Chains and groups" and "Results" list them):
 *
 * - `reply: {tube, token}`: put the outcome (and progress) into `tube` as `{"token", "ok", ...}`.
 * - `chain: {index, of, next: [link...]}`: this job is link `index` (0-based) of `of`; on success the
 *   worker puts `next[0]` with the rest of `next`. A link is `{func_name, tube, kwargs, pipe?, priority?,
 *   delay?, ttr?}`; `pipe` names the kwargs key that receives this job's return value.
 * - `group: {tube, barrier, callback}`: a member of a group whose barrier tube is `tube`; on success the
 *   worker deletes job `barrier` (its place in the barrier) and, when the tube is empty, kicks the
 *   delayed `callback` job.
 * - `chord: {tube}`: this job is a group's callback; it runs only once the barrier tube `tube` is empty.
 */
import { assertPriority, assertSeconds, assertTtr, assertTubeName } from '../beanstalk/validate.js';

/** Where a job's outcome goes: a reply tube that only its caller reads, and the caller's token for it. */
export interface ReplyMeta {
  readonly tube: string;
  readonly token: string;
}

/** One link of a chain still to run, as it travels in the envelope. */
export interface WireLink {
  readonly func_name: string;
  readonly tube: string;
  readonly kwargs: Record<string, unknown>;
  /** The kwargs key that receives the previous link's return value. */
  readonly pipe?: string;
  readonly priority?: number;
  readonly delay?: number;
  readonly ttr?: number;
}

/** This job's place in its chain and the links after it. */
export interface ChainMeta {
  /** 0-based. */
  readonly index: number;
  readonly of: number;
  readonly next: readonly WireLink[];
}

/** A group member's place in the group's barrier. */
export interface GroupMeta {
  /** The barrier tube: one job per member that has not yet succeeded. */
  readonly tube: string;
  /** The id of this member's barrier job, on the member's own server. */
  readonly barrier: string;
  /** The id of the group's callback job (delayed until the last member kicks it), when there is one. */
  readonly callback?: string;
  /** Where this member puts its return value, for a callback that takes the members' results. */
  readonly results?: string;
  /** This member's place in the group (0-based), the order of the results the callback gets. */
  readonly index?: number;
}

/** What a callback that takes its members' results needs: where they are, how many, and its kwargs key. */
export interface ChordResultsMeta {
  readonly tube: string;
  readonly members: number;
  readonly pipe: string;
}

/** A group's callback: it waits for its barrier tube to be empty. */
export interface ChordMeta {
  readonly tube: string;
  /** Present when the callback takes the members' return values as `kwargs[pipe]`. */
  readonly results?: ChordResultsMeta;
}

/** What a job's meta asks of the worker beyond running it. Undefined members are absent. */
export interface Flow {
  readonly reply?: ReplyMeta;
  readonly chain?: ChainMeta;
  readonly group?: GroupMeta;
  readonly chord?: ChordMeta;
}

/** A flow member that is present but not in the shape above: the job is buried as invalid, never half run. */
export class FlowMetaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowMetaError';
  }
}

/** The longest chain a job may carry (links after it): far past any real pipeline, short of a body's size. */
export const MAX_CHAIN_LINKS = 1_000;

const ID = /^[0-9]{1,20}$/;
const TOKEN = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * The flow a decoded envelope's `meta` asks for: undefined when it asks for none (the common case: one
 * check per member), a {@link FlowMetaError} naming the member when one is malformed.
 */
export function readFlow(meta: Record<string, unknown>): Flow | FlowMetaError | undefined {
  const { reply, chain, group, chord } = meta;
  if (reply === undefined && chain === undefined && group === undefined && chord === undefined) return undefined;
  try {
    const flow: { reply?: ReplyMeta; chain?: ChainMeta; group?: GroupMeta; chord?: ChordMeta } = {};
    if (reply !== undefined) flow.reply = readReply(reply);
    if (chain !== undefined) flow.chain = readChain(chain);
    if (group !== undefined) flow.group = readGroup(group);
    if (chord !== undefined) flow.chord = readChord(chord);
    return flow;
  } catch (error) {
    return error instanceof FlowMetaError ? error : new FlowMetaError(String((error as Error).message ?? error));
  }
}

function readReply(value: unknown): ReplyMeta {
  const reply = objectOf(value, 'meta.reply');
  const tube = tubeOf(reply.tube, 'meta.reply.tube');
  if (typeof reply.token !== 'string' || !TOKEN.test(reply.token)) {
    throw new FlowMetaError('`meta.reply.token` must be 1 to 100 letters, digits, `.`, `_` or `-`');
  }
  return { tube, token: reply.token };
}

function readChain(value: unknown): ChainMeta {
  const chain = objectOf(value, 'meta.chain');
  const { index, of, next } = chain;
  if (!Array.isArray(next)) throw new FlowMetaError('`meta.chain.next` must be an array of links');
  if (next.length > MAX_CHAIN_LINKS) throw new FlowMetaError(`\`meta.chain.next\` holds more than ${MAX_CHAIN_LINKS} links`);
  if (!Number.isSafeInteger(index) || (index as number) < 0) throw new FlowMetaError('`meta.chain.index` must be an integer >= 0');
  if (!Number.isSafeInteger(of) || (of as number) < (index as number) + 1 + next.length) {
    throw new FlowMetaError('`meta.chain.of` must be an integer counting this link and the ones after it');
  }
  return { index: index as number, of: of as number, next: next.map((link, at) => readLink(link, `meta.chain.next[${at}]`)) };
}

/** Checks one link as `put` would check its parts, so a bad link stops its chain here, with a reason. */
export function readLink(value: unknown, where: string): WireLink {
  const link = objectOf(value, where);
  const { func_name: funcName, kwargs, pipe, priority, delay, ttr } = link;
  if (typeof funcName !== 'string' || funcName === '') throw new FlowMetaError(`\`${where}.func_name\` must be a non-empty string`);
  const tube = tubeOf(link.tube, `${where}.tube`);
  const out: { -readonly [K in keyof WireLink]: WireLink[K] } = { func_name: funcName, tube, kwargs: objectOf(kwargs, `${where}.kwargs`) };
  if (pipe !== undefined) {
    if (typeof pipe !== 'string' || pipe === '' || pipe === '__proto__') throw new FlowMetaError(`\`${where}.pipe\` must be a kwargs key`);
    out.pipe = pipe;
  }
  try {
    if (priority !== undefined) {
      assertPriority(priority, `${where}.priority`);
      out.priority = priority;
    }
    if (delay !== undefined) {
      assertSeconds(delay, `${where}.delay`);
      out.delay = delay;
    }
    if (ttr !== undefined) {
      assertTtr(ttr, `${where}.ttr`);
      out.ttr = ttr;
    }
  } catch (error) {
    throw new FlowMetaError((error as Error).message);
  }
  return out;
}

function readGroup(value: unknown): GroupMeta {
  const group = objectOf(value, 'meta.group');
  const out: { -readonly [K in keyof GroupMeta]: GroupMeta[K] } = {
    tube: tubeOf(group.tube, 'meta.group.tube'),
    barrier: idOf(group.barrier, 'meta.group.barrier'),
  };
  if (group.callback !== undefined) out.callback = idOf(group.callback, 'meta.group.callback');
  if (group.results !== undefined) {
    out.results = tubeOf(group.results, 'meta.group.results');
    if (!Number.isSafeInteger(group.index) || (group.index as number) < 0) {
      throw new FlowMetaError('`meta.group.index` must be an integer >= 0 when `meta.group.results` is set');
    }
    out.index = group.index as number;
  }
  return out;
}

/** The largest group whose results a callback collects: each result is a job it holds while it runs. */
export const MAX_GROUP_RESULTS = 10_000;

function readChord(value: unknown): ChordMeta {
  const chord = objectOf(value, 'meta.chord');
  const tube = tubeOf(chord.tube, 'meta.chord.tube');
  if (chord.results === undefined) return { tube };
  const results = objectOf(chord.results, 'meta.chord.results');
  const { members, pipe } = results;
  if (!Number.isSafeInteger(members) || (members as number) < 1 || (members as number) > MAX_GROUP_RESULTS) {
    throw new FlowMetaError(`\`meta.chord.results.members\` must be an integer from 1 to ${MAX_GROUP_RESULTS}`);
  }
  if (typeof pipe !== 'string' || pipe === '' || pipe === '__proto__')
    throw new FlowMetaError('`meta.chord.results.pipe` must be a kwargs key');
  return { tube, results: { tube: tubeOf(results.tube, 'meta.chord.results.tube'), members: members as number, pipe } };
}

function objectOf(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FlowMetaError(`\`${where}\` must be an object`);
  return value as Record<string, unknown>;
}

function tubeOf(value: unknown, where: string): string {
  try {
    assertTubeName(value, where);
  } catch (error) {
    throw new FlowMetaError((error as Error).message);
  }
  return value;
}

function idOf(value: unknown, where: string): string {
  if (typeof value !== 'string' || !ID.test(value)) throw new FlowMetaError(`\`${where}\` must be a job id (decimal digits)`);
  return value;
}
