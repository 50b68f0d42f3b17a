/**
 * `bsworker peek`: one job's state (from `stats-job`) and its decoded body, by id or as the next
 * ready, delayed or buried job of a tube.
 *
 * Job bodies are untrusted input: whatever a producer (or an attacker who can reach beanstalkd) wrote
 * ends up on an operator's terminal. Every string taken from a body is JSON-quoted, and the characters
 * JSON leaves alone but terminals act on (C1 controls, bidi overrides) are escaped as well.
 */
import type { Command } from 'commander';
import type { Admin } from '../../admin/admin.js';
import type { JobEnvelope, JobHistory, JobReport } from '../../admin/types.js';
import type { FailureEntry } from '../../failures/record.js';
import type { FlowDescription } from '../../flows/describe.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { colors, type Output, printJson, terminalSafeJson, terminalSafeText } from '../output.js';
import { parseTube } from '../parse.js';
import { jsonOption, opsAction, parseJobRef, serverOf, serverOption, urlOf, urlOption } from './common.js';

/** The decoded envelope in {@link PeekJson}. */
export type PeekEnvelopeJson = JobEnvelope;

/**
 * The document `bsworker peek --json` prints: the admin layer's job report without the fields that name
 * the server or repeat the body (`server`, `lastFailure`, `deadLetter`), and `history` only for a job
 * whose body has one, `flow` only for a job of a chain, group or reply. Counters and times come from `stats-job`, in whole seconds. Exactly one of
 * `envelope` and `raw` is non-null.
 */
export interface PeekJson extends Omit<JobReport, 'server' | 'history' | 'lastFailure' | 'deadLetter' | 'flow'> {
  /** The failure history kept in the body (`meta.failures`); present only when there is one. */
  readonly history?: JobHistory;
  /** The job's chain, group or reply (as the API's `flow`); present only when it has one. */
  readonly flow?: FlowDescription;
  /** Only with several servers configured: the server the job is on (its id is qualified too). */
  readonly server?: string;
}

/** Which job to peek at. */
export type PeekTarget = { readonly id: string } | { readonly tube: string; readonly state: 'ready' | 'delayed' | 'buried' };

/** Text output shows at most this many characters of a raw body; `--json` shows all of it. */
const RAW_TEXT_CHARS = 300;
/** Compact JSON up to this length stays on the label's line; longer values are pretty-printed below it. */
const INLINE_JSON_CHARS = 100;

/** The `peek --json` document of a job report; `several`: several servers are configured. */
export function peekJson(job: JobReport, several = false): PeekJson {
  const { server, history, lastFailure: _last, deadLetter: _dead, flow, ...rest } = job;
  const withFlow = flow === null ? rest : { ...rest, flow };
  const withHistory = history === null ? withFlow : { ...withFlow, history };
  return several ? { ...withHistory, server } : withHistory;
}

/** Finds the job; the admin layer's NotFoundError says what was not there. */
function findJob(admin: Admin, target: PeekTarget): Promise<JobReport> {
  return 'id' in target ? admin.job(target.id) : admin.peek(target.tube, target.state);
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
  if (job.server !== undefined) line('server', job.server);
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
    // The flow's summary names tasks from the body: escaped like the rest of it.
    if (job.flow) line('flow', terminalSafeText(job.flow.summary));
    jsonLines('kwargs', job.envelope.kwargs);
    const meta = job.history === undefined ? job.envelope.meta : metaWithoutHistory(job.envelope.meta);
    if (meta !== undefined) jsonLines('meta', meta);
    if (job.history !== undefined) printHistory(output, job.history);
    return;
  }
  const raw = job.raw ?? '';
  const cut = raw.length > RAW_TEXT_CHARS;
  const bytes = Buffer.byteLength(raw);
  line('raw body', `${terminalSafeJson(cut ? `${raw.slice(0, RAW_TEXT_CHARS)}…` : raw)}${cut ? ` (cut; ${bytes} bytes in all)` : ''}`);
  line('note', c.yellow(`not a bsworker job: ${terminalSafeText(job.decodeError ?? 'unknown reason')}`));
}

/** `meta` without the history shown apart; undefined when nothing else is left in it. */
function metaWithoutHistory(meta: unknown): unknown {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return meta;
  const { failures: _failures, carried: _carried, ...rest } = meta as Record<string, unknown>;
  return Object.keys(rest).length === 0 ? undefined : rest;
}

/**
 * Prints every failure of the history, oldest first, each with its whole (capped) stack. The entries
 * were checked field by field when read, but their text is still the job's: escaped for the terminal.
 */
export function printHistory(output: Output, history: JobHistory): void {
  const c = colors(output);
  const safe = terminalSafeText;
  output.print(`${c.bold('failures:')}   ${history.failures.length}`);
  history.failures.forEach((e: FailureEntry, i) => {
    output.print(
      safe(
        `  #${i + 1} ${e.at || '?'}  ${e.reason}, attempt ${e.attempt}, kicks ${e.kicks}, worker ${e.worker.host || '?'}:${e.worker.pid}, job ${e.job_id || '?'} in ${e.tube || '?'}`,
      ),
    );
    output.print(`     ${c.red(safe(`${e.name || 'Error'}: ${e.message}`))}`);
    for (const frame of (e.stack ?? '').split('\n').filter((line) => /^\s*at\s/.test(line))) output.print(`       ${safe(frame.trim())}`);
    if (e.issues !== undefined) output.print(`     issues: ${terminalSafeJson(e.issues)}`);
    if (e.unrecoverable === true) output.print('     unrecoverable: auto-kick leaves it buried');
  });
  if (history.carried !== undefined) output.print(`  carried: ${terminalSafeJson(history.carried)}`);
}

/** The `peek` options, as commander parsed them. */
interface PeekOptions {
  tube?: string;
  ready?: boolean;
  delayed?: boolean;
  buried?: boolean;
  json?: boolean;
  url?: string;
  server?: string;
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
    .argument('[id]', 'the job id (host:port/42 with several servers)', parseJobRef)
    .option('--tube <tube>', 'peek into this tube (with --ready, --delayed or --buried)', parseTube)
    .option('--ready', 'the next job a worker would reserve')
    .option('--delayed', 'the delayed job that becomes ready first')
    .option('--buried', 'the oldest buried job (the next one `kick` moves)')
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .addHelpText(
      'after',
      '\nWith several servers (--url a,b,c), --tube looks on each in turn and ids are host:port/42.\n\nExamples:\n  bsworker peek 42\n  bsworker peek 127.0.0.1:11301/42\n  bsworker peek --tube emails --buried --json',
    )
    .action(
      opsAction(async (id: string | undefined, options: PeekOptions, command: Command) => {
        const target = targetOf(id, options);
        const job = await withAdmin(
          urlOf(command, options),
          async (admin) => peekJson(await findJob(admin, target), admin.several),
          serverOf(options),
        );
        // printJson escapes what JSON.stringify leaves alone (C1 controls from a hostile body).
        if (options.json) printJson(output, job);
        else printJob(output, job);
      }),
    );
}
