/**
 * `bsworker peek`: one job's state (from `stats-job`) and its decoded body, by id or as the next
 * ready, delayed or buried job of a tube.
 *
 * Job bodies are untrusted input: whatever a producer (or an attacker who can reach beanstalkd) wrote
 * ends up on an operator's terminal. Every string taken from a body is JSON-quoted, and the characters
 * JSON leaves alone but terminals act on (C1 controls, bidi overrides) are escaped as well.
 */
import type { Command } from 'commander';
import type { JobStats, PeekedJob } from '../../beanstalk/types.js';
import { decodeEnvelope } from '../../envelope/envelope.js';
import { withConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import { colors, type Output, printJson, terminalSafeJson, terminalSafeText } from '../output.js';
import { parseJobId, parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/** The decoded envelope in {@link PeekJson}. */
export interface PeekEnvelopeJson {
  /** The task name the body asks for. */
  readonly func_name: string;
  /** The tube the producer wrote into the body (not necessarily the tube the job is in), or null if absent. */
  readonly tube: string | null;
  /** The task's keyword arguments. */
  readonly kwargs: Record<string, unknown>;
  /** The body's `meta` field, present only when the body has one (dead letters keep their failure here). */
  readonly meta?: unknown;
}

/**
 * The document `bsworker peek --json` prints. Counters and times come from `stats-job`, times in whole
 * seconds. Exactly one of `envelope` and `raw` is non-null.
 */
export interface PeekJson {
  /** The job id, a decimal string (beanstalkd ids are 64-bit). */
  readonly id: string;
  /** The tube the job is in. */
  readonly tube: string;
  /** `ready`, `delayed`, `reserved` or `buried`. */
  readonly state: string;
  /** 0 is the most urgent. */
  readonly priority: number;
  readonly ageSeconds: number;
  /** The delay the job was put or released with. */
  readonly delaySeconds: number;
  readonly ttrSeconds: number;
  /** Seconds until a delayed job becomes ready or a reserved job's TTR runs out; 0 otherwise. */
  readonly timeLeftSeconds: number;
  readonly reserves: number;
  readonly timeouts: number;
  readonly releases: number;
  readonly buries: number;
  readonly kicks: number;
  /** The decoded body, or null when the body is not a bsworker envelope. */
  readonly envelope: PeekEnvelopeJson | null;
  /**
   * The whole body when it is not an envelope, decoded as UTF-8 (bytes that are not UTF-8 become
   * U+FFFD); null when `envelope` is set.
   */
  readonly raw: string | null;
  /** Why the body is not an envelope, or null. */
  readonly decodeError: string | null;
}

/** Which job to peek at. */
export type PeekTarget = { readonly id: string } | { readonly tube: string; readonly state: 'ready' | 'delayed' | 'buried' };

/** Text output shows at most this many characters of a raw body; `--json` shows all of it. */
const RAW_TEXT_CHARS = 300;
/** Compact JSON up to this length stays on the label's line; longer values are pretty-printed below it. */
const INLINE_JSON_CHARS = 100;

/** Builds the {@link PeekJson} document from a job's stats and body. */
export function describeJob(stats: JobStats, body: Buffer): PeekJson {
  const decoded = decodeEnvelope(body);
  const counters = {
    id: stats.id,
    tube: stats.tube,
    state: stats.state,
    priority: stats.priority,
    ageSeconds: stats.ageSeconds,
    delaySeconds: stats.delaySeconds,
    ttrSeconds: stats.ttrSeconds,
    timeLeftSeconds: stats.timeLeftSeconds,
    reserves: stats.reserves,
    timeouts: stats.timeouts,
    releases: stats.releases,
    buries: stats.buries,
    kicks: stats.kicks,
  };
  if (!decoded.ok) return { ...counters, envelope: null, raw: body.toString('utf8'), decodeError: decoded.message };
  const { func_name, tube, kwargs } = decoded.envelope;
  const meta = metaOf(body);
  return {
    ...counters,
    envelope: { func_name, tube: tube ?? null, kwargs, ...(meta === undefined ? {} : { meta }) },
    raw: null,
    decodeError: null,
  };
}

/**
 * The body's `meta` field. The envelope decoder ignores fields it does not know, so `meta` is read here;
 * the body already decoded as an envelope, so it parses and has no `__proto__` key.
 */
function metaOf(body: Buffer): unknown {
  const value = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  return Object.hasOwn(value, 'meta') ? value.meta : undefined;
}

/** Finds the job, or throws a {@link UsageError} that says what was not there. */
async function findJob(target: PeekTarget, url: string | undefined): Promise<PeekJson> {
  return withConnection(url, async (connection) => {
    let job: PeekedJob | null;
    if ('id' in target) {
      job = await connection.peek(target.id);
      if (!job) throw new UsageError(`job ${target.id} does not exist`);
    } else {
      await connection.use(target.tube);
      const peek = { ready: () => connection.peekReady(), delayed: () => connection.peekDelayed(), buried: () => connection.peekBuried() };
      job = await peek[target.state]();
      if (!job) throw new UsageError(`no ${target.state} job in tube ${target.tube}`);
    }
    const stats = await connection.statsJob(job.id);
    // Another client deleted it between the two commands.
    if (!stats) throw new UsageError(`job ${job.id} was deleted while it was being read`);
    return describeJob(stats, job.body);
  });
}

function seconds(value: number): string {
  if (value < 120) return `${value}s`;
  if (value < 3_600) return `${value}s (${Math.floor(value / 60)}m ${value % 60}s)`;
  if (value < 172_800) return `${value}s (${Math.floor(value / 3_600)}h ${Math.floor((value % 3_600) / 60)}m)`;
  return `${value}s (${Math.floor(value / 86_400)}d ${Math.floor((value % 86_400) / 3_600)}h)`;
}

/** Prints the job as `label: value` lines. */
export function printJob(output: Output, job: PeekJson): void {
  const c = colors(output);
  const line = (label: string, value: string): void => output.print(`${c.bold(`${label}:`.padEnd(11))} ${value}`.trimEnd());
  const jsonLines = (label: string, value: unknown): void => {
    const compact = terminalSafeJson(value);
    if (compact.length <= INLINE_JSON_CHARS) {
      line(label, compact);
      return;
    }
    line(label, '');
    for (const text of terminalSafeJson(value, 2).split('\n')) output.print(`  ${text}`);
  };

  line('id', job.id);
  line('tube', job.tube);
  line('state', job.state);
  line('priority', String(job.priority));
  line('age', seconds(job.ageSeconds));
  line('delay', seconds(job.delaySeconds));
  line('ttr', seconds(job.ttrSeconds));
  line('time-left', seconds(job.timeLeftSeconds));
  line('reserves', String(job.reserves));
  line('timeouts', String(job.timeouts));
  line('releases', String(job.releases));
  line('buries', String(job.buries));
  line('kicks', String(job.kicks));
  if (job.envelope) {
    line('func_name', terminalSafeJson(job.envelope.func_name));
    if (job.envelope.tube !== job.tube) line('body tube', job.envelope.tube === null ? '(none)' : terminalSafeJson(job.envelope.tube));
    jsonLines('kwargs', job.envelope.kwargs);
    if (job.envelope.meta !== undefined) jsonLines('meta', job.envelope.meta);
    return;
  }
  const raw = job.raw ?? '';
  const cut = raw.length > RAW_TEXT_CHARS;
  const bytes = Buffer.byteLength(raw);
  line('raw body', `${terminalSafeJson(cut ? `${raw.slice(0, RAW_TEXT_CHARS)}…` : raw)}${cut ? ` (cut; ${bytes} bytes in all)` : ''}`);
  line('note', c.yellow(`not a bsworker job: ${terminalSafeText(job.decodeError ?? 'unknown reason')}`));
}

/** The `peek` options, as commander parsed them. */
interface PeekOptions {
  tube?: string;
  ready?: boolean;
  delayed?: boolean;
  buried?: boolean;
  json?: boolean;
  url?: string;
}

/** Turns the argument and options into one target, or throws a {@link UsageError} saying what to give. */
function targetOf(id: string | undefined, options: PeekOptions): PeekTarget {
  const states = (['ready', 'delayed', 'buried'] as const).filter((state) => options[state] === true);
  if (id !== undefined) {
    if (options.tube !== undefined || states.length > 0) {
      throw new UsageError('give either a job id or --tube with --ready, --delayed or --buried, not both');
    }
    return { id };
  }
  if (options.tube === undefined) {
    throw new UsageError(
      states.length > 0
        ? `--${states[0]} needs --tube: which tube to look in`
        : 'give a job id (bsworker peek 42) or a tube and a state (bsworker peek --tube emails --buried)',
    );
  }
  const [state, ...more] = states;
  if (state === undefined) throw new UsageError('with --tube, give one of --ready, --delayed or --buried');
  if (more.length > 0) throw new UsageError('give only one of --ready, --delayed or --buried');
  return { tube: options.tube, state };
}

/** Registers `peek`. */
export function registerPeekCommand(program: Command, output: Output): void {
  program
    .command('peek')
    .description("show a job's state, counters and decoded body, by id or the next ready, delayed or buried job of a tube")
    .argument('[id]', 'the job id', parseJobId)
    .option('--tube <tube>', 'peek into this tube (with --ready, --delayed or --buried)', parseTube)
    .option('--ready', 'the next job a worker would reserve')
    .option('--delayed', 'the delayed job that becomes ready first')
    .option('--buried', 'the oldest buried job (the next one `kick` moves)')
    .addOption(jsonOption())
    .addOption(urlOption())
    .addHelpText('after', '\nExamples:\n  bsworker peek 42\n  bsworker peek --tube emails --buried --json')
    .action(
      opsAction(async (id: string | undefined, options: PeekOptions, command: Command) => {
        const job = await findJob(targetOf(id, options), urlOf(command, options));
        // Not printJson: its JSON.stringify would pass C1 controls from a hostile body to the terminal.
        if (options.json) printJson(output, job);
        else printJob(output, job);
      }),
    );
}
