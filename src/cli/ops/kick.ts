/**
 * `bsworker kick`, `bsworker kick-job` and `bsworker buried`: handling buried jobs from the shell.
 * Each command gathers one result object (the `--json` document) and prints it either as JSON or as text,
 * so the two outputs cannot drift apart.
 */
import type { Command } from 'commander';
import { type KickedTube, kickBuried } from '../../beanstalk/kick-buried.js';
import { decodeEnvelope } from '../../envelope/envelope.js';
import { withConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import { formatDuration, type Output, printJson, terminalSafeJson, terminalSafeText } from '../output.js';
import { integerIn, parseJobId, parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/** One tube's part of the `kick --json` document. */
export type { KickedTube } from '../../beanstalk/kick-buried.js';

/**
 * The `bsworker kick --json` document: `{ "kicked": 3, "tubes": [{ "tube": "emails", "kicked": 3, "stillBuried": 0 }] }`.
 * With `--tube`, `tubes` has exactly one entry (kicked 0 when nothing was buried); with `--all-tubes` it
 * lists, sorted by name, every tube that had buried jobs, and is empty when none had.
 */
export interface KickResult {
  /** The total kicked, over all tubes. */
  readonly kicked: number;
  readonly tubes: readonly KickedTube[];
}

/** The `bsworker kick-job --json` document: `{ "id": "42", "kicked": true, "from": "buried", "tube": "emails" }`. */
export interface KickJobResult {
  readonly id: string;
  /** Always true: a job that cannot be kicked is an error (exit 2), not a `false`. */
  readonly kicked: true;
  /** The state the job was kicked from; it is ready now. */
  readonly from: 'buried' | 'delayed';
  readonly tube: string;
}

/** The first buried job of a tube, in the `bsworker buried --json` document. */
export interface BuriedJobSummary {
  readonly id: string;
  /** The task name, or null when the body is not a bsworker envelope (see `raw`). */
  readonly func_name: string | null;
  /** The task's keyword arguments, or null when the body is not a bsworker envelope. */
  readonly kwargs: Record<string, unknown> | null;
  /** How many times the job was kicked; null if the job vanished before its stats were read. */
  readonly kicks: number | null;
  /** Seconds since the job was put; null if the job vanished before its stats were read. */
  readonly ageSeconds: number | null;
  /** Only for a body that is not a bsworker envelope: the whole body as UTF-8 (invalid bytes replaced). */
  readonly raw?: string;
  /** Only for a body that is not a bsworker envelope: why it could not be decoded. */
  readonly decodeError?: string;
}

/**
 * The `bsworker buried --json` document:
 * `{ "tube": "emails", "buried": 2, "first": { "id": "42", "func_name": "send", "kwargs": {...}, "kicks": 1, "ageSeconds": 30 } }`;
 * `first` is null when the tube has no buried job (or does not exist).
 */
export interface BuriedReport {
  readonly tube: string;
  readonly buried: number;
  readonly first: BuriedJobSummary | null;
}

/**
 * Kicks buried jobs in `tube`, or in every tube when `tube` is undefined; `bound` applies to each tube.
 * Tubes are kicked one after another on one connection, because `kick` acts on the tube in use.
 */
export async function kickTubes(options: { tube?: string; bound?: number; url?: string }): Promise<KickResult> {
  return withConnection(options.url, async (connection) => {
    const tubes = options.tube === undefined ? (await connection.listTubes()).sort() : [options.tube];
    const results: KickedTube[] = [];
    for (const tube of tubes) {
      const result = await kickBuried(connection, tube, options.bound);
      if (result) results.push(result);
      else if (options.tube !== undefined) results.push({ tube, kicked: 0, stillBuried: 0 });
    }
    return { kicked: results.reduce((sum, result) => sum + result.kicked, 0), tubes: results };
  });
}

/** Kicks one buried or delayed job. An unknown id, or a job in another state, is a usage error. */
export async function kickJob(options: { id: string; url?: string }): Promise<KickJobResult> {
  return withConnection(options.url, async (connection) => {
    const stats = await connection.statsJob(options.id);
    if (!stats) throw new UsageError(`job ${options.id} does not exist`);
    // Spelled out: JobStats.state admits any string, so a plain comparison would not narrow it.
    const from = stats.state === 'buried' ? 'buried' : stats.state === 'delayed' ? 'delayed' : undefined;
    if (from === undefined) throw new UsageError(`job ${options.id} is ${stats.state}; only buried or delayed jobs can be kicked`);
    await connection.kickJob(options.id);
    return { id: options.id, kicked: true, from, tube: stats.tube };
  });
}

/** Reads a tube's buried count and its first buried job. */
export async function readBuried(options: { tube: string; url?: string }): Promise<BuriedReport> {
  return withConnection(options.url, async (connection) => {
    const buried = (await connection.statsTube(options.tube))?.buried ?? 0;
    if (buried === 0) return { tube: options.tube, buried, first: null };
    await connection.use(options.tube);
    // The job may be kicked or deleted by someone else between these calls: then it is simply absent.
    const job = await connection.peekBuried();
    if (!job) return { tube: options.tube, buried, first: null };
    const jobStats = await connection.statsJob(job.id);
    const decoded = decodeEnvelope(job.body);
    const counters = { kicks: jobStats?.kicks ?? null, ageSeconds: jobStats?.ageSeconds ?? null };
    const first: BuriedJobSummary = decoded.ok
      ? { id: job.id, func_name: decoded.envelope.func_name, kwargs: decoded.envelope.kwargs, ...counters }
      : { id: job.id, func_name: null, kwargs: null, ...counters, raw: job.body.toString('utf8'), decodeError: decoded.message };
    return { tube: options.tube, buried, first };
  });
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function printKickText(output: Output, result: KickResult, allTubes: boolean): void {
  for (const tube of result.tubes) {
    if (tube.kicked === 0 && tube.stillBuried === 0) output.print(`no buried jobs in tube ${tube.tube}`);
    else output.print(`kicked ${plural(tube.kicked, 'buried job')} in tube ${tube.tube} (${tube.stillBuried} still buried)`);
  }
  if (!allTubes) return;
  if (result.tubes.length === 0) output.print('no buried jobs in any tube');
  else output.print(`total: kicked ${plural(result.kicked, 'buried job')} in ${plural(result.tubes.length, 'tube')}`);
}

function printBuriedText(output: Output, report: BuriedReport): void {
  output.print(`tube ${report.tube}: ${plural(report.buried, 'buried job')}`);
  const job = report.first;
  if (!job) return;
  output.print('first buried job:');
  output.print(`  id:        ${job.id}`);
  if (job.raw === undefined) {
    // JSON-quoted: a hostile body must not put terminal escape sequences on an operator's screen.
    // Escaped for the terminal: a hostile body must not send escape sequences to an operator's screen.
    output.print(`  func_name: ${terminalSafeJson(job.func_name)}`);
    output.print(`  kwargs:    ${terminalSafeJson(job.kwargs)}`);
  } else {
    const raw = job.raw.length > 200 ? `${job.raw.slice(0, 200)}…` : job.raw;
    output.print(`  body:      ${terminalSafeJson(raw)} (not a bsworker job: ${terminalSafeText(job.decodeError ?? 'unknown reason')})`);
  }
  if (job.kicks !== null) output.print(`  kicks:     ${job.kicks}`);
  if (job.ageSeconds !== null) output.print(`  age:       ${formatDuration(job.ageSeconds)}`);
}

interface KickOptions {
  tube?: string;
  allTubes?: boolean;
  bound?: number;
  json?: boolean;
  url?: string;
}

/** Registers `kick`, `kick-job` and `buried`. */
export function registerKickCommands(program: Command, output: Output): void {
  program
    .command('kick')
    .description('kick buried jobs of a tube, or of every tube, back to ready (delayed jobs are left alone)')
    .option('--tube <tube>', 'the tube (give --tube or --all-tubes)', parseTube)
    .option('--all-tubes', 'every tube on the server')
    .option('--bound <n>', 'kick at most this many, per tube (default: all buried jobs)', integerIn(1))
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: KickOptions, command: Command) => {
        // Exactly one: a forgotten --tube must not silently widen to every tube.
        if ((options.tube === undefined) === (options.allTubes !== true)) {
          throw new UsageError('give exactly one of --tube <tube> or --all-tubes');
        }
        const result = await kickTubes({ tube: options.tube, bound: options.bound, url: urlOf(command, options) });
        if (options.json) printJson(output, result);
        else printKickText(output, result, options.allTubes === true);
      }),
    );

  program
    .command('kick-job')
    .description('kick one buried or delayed job back to ready')
    .argument('<id>', 'the job id', parseJobId)
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (id: string, options: { json?: boolean; url?: string }, command: Command) => {
        const result = await kickJob({ id, url: urlOf(command, options) });
        if (options.json) printJson(output, result);
        else output.print(`kicked job ${result.id} (was ${result.from} in tube ${result.tube}, now ready)`);
      }),
    );

  program
    .command('buried')
    .description("show a tube's buried count and its first buried job")
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: { tube: string; json?: boolean; url?: string }, command: Command) => {
        const report = await readBuried({ tube: options.tube, url: urlOf(command, options) });
        if (options.json) printJson(output, report);
        else printBuriedText(output, report);
      }),
    );
}
