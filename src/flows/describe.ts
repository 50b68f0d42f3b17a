/**
 * A job's flow (chain, group, chord, reply) as the HTTP API, the dashboard and the terminal show it:
 * read from an untrusted body's `meta` with the worker's own reader ({@link readFlow}), so a flow is
 * shown exactly as a worker would take it, and a malformed one is shown as malformed (the worker buries
 * such a job as `invalid`) instead of throwing. Pure.
 *
 * Two things are never shown: the caller's reply token (it is the caller's proof that a reply is
 * theirs; "a caller waits" is all an operator needs), and, in lists, the kwargs of the links still to
 * run (a chain carries up to `MAX_CHAIN_LINKS`, 1,000, of them, each up to a body's size).
 */
import { FlowMetaError, readFlow } from './meta.js';

/** A link still to run, as a list shows it. */
export interface FlowLinkSummary {
  readonly func_name: string;
  readonly tube: string;
}

/** A link still to run, as the job's own view shows it: with its kwargs (job data: untrusted). */
export interface FlowLinkDetail extends FlowLinkSummary {
  readonly kwargs: Record<string, unknown>;
  /** The kwargs key that receives the previous link's return value; null when none does. */
  readonly pipe: string | null;
}

/** This job's place in its chain. */
export interface FlowChain {
  /** 1-based: "link `position` of `of`". */
  readonly position: number;
  readonly of: number;
  /** How many links come after this one. */
  readonly nextCount: number;
  /**
   * The links after this one, in order: every one with its kwargs in the job's own view; in lists the
   * first {@link LISTED_LINKS}, names and tubes only.
   */
  readonly next: readonly (FlowLinkSummary | FlowLinkDetail)[];
}

/** A group member's place. */
export interface FlowGroup {
  /** The group's barrier tube: one job per member not yet succeeded. */
  readonly tube: string;
  /** This member's barrier job id (on the member's server). */
  readonly barrier: string;
  /** The group's callback job id; null for a group without one. */
  readonly callback: string | null;
}

/** A group's callback (a chord): it runs once its barrier tube is empty. */
export interface FlowChord {
  readonly tube: string;
  /**
   * Members not yet succeeded (the barrier tube's job count), read only in the job's own view; null in
   * lists, or when the count could not be read.
   */
  readonly membersLeft: number | null;
}

/** A job's flow, every member checked; each part null when the job has none. */
export interface FlowDescription {
  /** One line for people, e.g. `link 2 of 3, then charge, notify; a caller waits for its result`. */
  readonly summary: string;
  readonly chain: FlowChain | null;
  readonly group: FlowGroup | null;
  readonly chord: FlowChord | null;
  /** True when a caller waits for the job's result (`meta.reply`; its token is never shown). */
  readonly reply: boolean;
  /** Why the flow is malformed (a worker buries the job as `invalid`), or null. The parts are null then. */
  readonly malformed: string | null;
}

/** How many links a list names at most (`nextCount` says how many there are). */
export const LISTED_LINKS = 20;

/** How many link names the one-line summary spells out. */
const SUMMARY_LINKS = 3;

/** Options of {@link describeFlow}. */
export interface DescribeFlowOptions {
  /** The job's own view: every link with its kwargs. @defaultValue false (a list) */
  readonly detail?: boolean;
}

/**
 * The flow of a decoded envelope's `meta` (anything: a body's `meta` is untrusted), or null when it
 * asks for none. Never throws.
 */
export function describeFlow(meta: unknown, options: DescribeFlowOptions = {}): FlowDescription | null {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return null;
  let flow: ReturnType<typeof readFlow>;
  try {
    flow = readFlow(meta as Record<string, unknown>);
  } catch (error) {
    // readFlow reports what it finds as a value; a throw here would be a getter or a proxy in meta.
    flow = new FlowMetaError(error instanceof Error ? error.message : String(error));
  }
  if (flow === undefined) return null;
  if (flow instanceof FlowMetaError) {
    return { summary: `malformed flow: ${flow.message}`, chain: null, group: null, chord: null, reply: false, malformed: flow.message };
  }
  const detail = options.detail === true;
  const chain: FlowChain | null =
    flow.chain === undefined
      ? null
      : {
          position: flow.chain.index + 1,
          of: flow.chain.of,
          nextCount: flow.chain.next.length,
          next: detail
            ? flow.chain.next.map((link) => ({ func_name: link.func_name, tube: link.tube, kwargs: link.kwargs, pipe: link.pipe ?? null }))
            : flow.chain.next.slice(0, LISTED_LINKS).map((link) => ({ func_name: link.func_name, tube: link.tube })),
        };
  const group: FlowGroup | null =
    flow.group === undefined ? null : { tube: flow.group.tube, barrier: flow.group.barrier, callback: flow.group.callback ?? null };
  const chord: FlowChord | null = flow.chord === undefined ? null : { tube: flow.chord.tube, membersLeft: null };
  const parts = { chain, group, chord, reply: flow.reply !== undefined };
  return { summary: summariseFlow(parts), ...parts, malformed: null };
}

/** The one-line summary of a flow's parts (again after `membersLeft` is read). */
export function summariseFlow(flow: Pick<FlowDescription, 'chain' | 'group' | 'chord' | 'reply'>): string {
  const parts: string[] = [];
  const { chain, group, chord } = flow;
  if (chain !== null) {
    const names = chain.next.slice(0, SUMMARY_LINKS).map((link) => link.func_name);
    const more = chain.nextCount - names.length;
    const then = chain.nextCount === 0 ? 'the last' : `then ${names.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
    parts.push(`link ${chain.position} of ${chain.of}, ${then}`);
  }
  if (group !== null) parts.push(`member of group ${group.tube}${group.callback === null ? '' : `, callback job ${group.callback}`}`);
  if (chord !== null) {
    const left = chord.membersLeft === null ? '' : `, ${chord.membersLeft} ${chord.membersLeft === 1 ? 'member' : 'members'} left`;
    parts.push(`callback of group ${chord.tube}${left}`);
  }
  if (flow.reply) parts.push('a caller waits for its result');
  return parts.join('; ');
}

/**
 * `meta` as it may be shown: the reply token replaced by `[redacted]` and, in lists, the links of a
 * chain left out (the flow names them). Anything else is kept as the body has it; the body itself is
 * never changed. Returns `meta` itself when there is nothing to hide.
 */
export function displayMeta(meta: unknown, options: DescribeFlowOptions = {}): unknown {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return meta;
  const record = meta as Record<string, unknown>;
  const { reply, chain } = record;
  const hideToken = typeof reply === 'object' && reply !== null && !Array.isArray(reply) && Object.hasOwn(reply, 'token');
  const hideLinks =
    options.detail !== true && typeof chain === 'object' && chain !== null && !Array.isArray(chain) && Object.hasOwn(chain, 'next');
  if (!hideToken && !hideLinks) return meta;
  const shown: Record<string, unknown> = { ...record };
  if (hideToken) shown.reply = { ...(reply as Record<string, unknown>), token: '[redacted]' };
  if (hideLinks) {
    const { next: _next, ...rest } = chain as Record<string, unknown>;
    shown.chain = rest;
  }
  return shown;
}
