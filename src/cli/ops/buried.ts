/**
 * `bsworker buried --tube T`: every buried job of a tube, newest first, a page at a time, each with its
 * last failure. beanstalkd shows only the first buried job of a tube; the rest are found by the admin
 * layer's bounded scan of recent ids (see the README's "Listing jobs"), which this command pages through
 * with `--cursor`.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { NotFoundError } from '../../admin/errors.js';
import { SCAN_DEFAULTS, SCAN_MAX } from '../../admin/scan.js';
import type { FailureSummary, JobReport, ScanStop } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { formatDuration, type Output, printJson, terminalSafeJson, terminalSafeText } from '../output.js';
import { integerIn, parseTube } from '../parse.js';
import { buriedIn, endIfPartial, jsonOption, opsAction, serverOf, serverOption, urlOf, urlOption } from './common.js';

/** A buried job in the `bsworker buried --json` document. */
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

/** A job of the listing: the summary, its priority, and its failure record. */
export interface BuriedListedJob extends BuriedJobSummary {
  readonly priority: number;
  /** How many failures the body records (`meta.failures`); 0 for a job buried without a record. */
  readonly failures: number;
  /** The most recent of them, or null. */
  readonly lastFailure: FailureSummary | null;
  /** Only for a job of a chain, group or reply: its place (`link 2 of 3, then notify`), as the API's `flow.summary`. */
  readonly flow?: string;
}

/**
 * The `bsworker buried --json` document. `first` is the oldest buried job (the next one `kick` moves),
 * null when there is none; `jobs` is one page of all of them, newest first; the scan fields say whether
 * the ids below were all examined (`exhausted`) or where to go on (`nextCursor`).
 */
export interface BuriedReport {
  readonly tube: string;
  /** Buried jobs in the tube now (`current-jobs-buried`). */
  readonly buried: number;
  readonly first: BuriedJobSummary | null;
  readonly jobs: readonly BuriedListedJob[];
  readonly scanned: number;
  readonly nextCursor: string | null;
  readonly exhausted: boolean;
  readonly stoppedBy: ScanStop;
  /**
   * Only with several servers configured: each answering server's page (a page is a scan of one
   * server's ids, `limit` jobs each). `jobs` above holds them all, server after server; `nextCursor`
   * above is set only with `--server` (a cursor is a position on one server).
   */
  readonly servers?: readonly BuriedOnServer[];
  /** Only with several servers configured: the servers that did not answer (their jobs are missing; exit 3). */
  readonly unavailable?: readonly string[];
}

/** One server's part of a {@link BuriedReport} over several servers. */
export interface BuriedOnServer {
  readonly server: string;
  readonly buried: number;
  readonly scanned: number;
  readonly nextCursor: string | null;
  readonly exhausted: boolean;
  readonly stoppedBy: ScanStop;
}

/** The summary of a job (`first` and each listed job). */
function summary(job: JobReport): BuriedJobSummary {
  const counters = { kicks: job.kicks, ageSeconds: job.ageSeconds };
  return job.envelope
    ? { id: job.id, func_name: job.envelope.func_name, kwargs: job.envelope.kwargs, ...counters }
    : { id: job.id, func_name: null, kwargs: null, ...counters, raw: job.raw ?? '', decodeError: job.decodeError ?? '' };
}

/** Options of {@link readBuried}. */
export interface BuriedOptions {
  readonly limit?: number;
  readonly cursor?: string;
  readonly scan?: number;
}

/** A listed job: the summary, its priority and its failure record. */
function listed(job: JobReport): BuriedListedJob {
  const listedJob = { ...summary(job), priority: job.priority, failures: job.history?.failures.length ?? 0, lastFailure: job.lastFailure };
  return job.flow ? { ...listedJob, flow: job.flow.summary } : listedJob;
}

/** The oldest buried job (the next one `kick` moves), or null: kicked or deleted by someone else since the count. */
function firstBuried(admin: Admin, tube: string): Promise<BuriedJobSummary | null> {
  return admin.peek(tube, 'buried').then(summary, (error: unknown) => {
    if (error instanceof NotFoundError) return null;
    throw error;
  });
}

/** Reads a tube's buried count, its first buried job and a page of the list (a page per server with several). */
export async function readBuried(admin: Admin, tube: string, options: BuriedOptions = {}): Promise<BuriedReport> {
  if (admin.several) return readSeveralBuried(admin, tube, options);
  const buried = await buriedIn(admin, tube);
  if (buried === 0 && options.cursor === undefined) {
    return { tube, buried, first: null, jobs: [], scanned: 0, nextCursor: null, exhausted: true, stoppedBy: 'end' };
  }
  const [first, page] = await Promise.all([firstBuried(admin, tube), admin.jobs(tube, 'buried', options)]);
  return {
    tube,
    buried,
    first,
    jobs: page.jobs.map(listed),
    scanned: page.scanned,
    nextCursor: page.nextCursor,
    exhausted: page.exhausted,
    stoppedBy: page.stoppedBy,
  };
}

/** {@link readBuried} over several servers: one page per server that holds buried jobs of the tube. */
async function readSeveralBuried(admin: Admin, tube: string, options: BuriedOptions): Promise<BuriedReport> {
  const one = admin.serverNames.length === 1;
  if (options.cursor !== undefined && !one) {
    throw new UsageError("--cursor is a position on one server: give --server too (the end of each server's page names it)");
  }
  const report = await admin.tube(tube).catch((error: unknown) => {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  });
  // The tube is on none of the servers that answered: who did not answer is still worth saying.
  const unavailable = report?.unavailable ?? (await admin.servers()).filter((server) => !server.up).map((server) => server.server);
  const holding = (report?.servers ?? []).filter((entry) => entry.buried > 0 || (one && options.cursor !== undefined));
  const [first, pages] = await Promise.all([
    holding.length === 0 ? null : firstBuried(admin, tube),
    Promise.all(holding.map((entry) => admin.jobs(tube, 'buried', { ...options, server: entry.server }))),
  ]);
  const servers: BuriedOnServer[] = pages.map((page, i) => ({
    server: page.server,
    buried: holding[i]?.buried ?? 0,
    scanned: page.scanned,
    nextCursor: page.nextCursor,
    exhausted: page.exhausted,
    stoppedBy: page.stoppedBy,
  }));
  const unfinished = servers.find((entry) => !entry.exhausted);
  return {
    tube,
    buried: report?.totals.buried ?? 0,
    first,
    jobs: pages.flatMap((page) => page.jobs.map(listed)),
    scanned: servers.reduce((sum, entry) => sum + entry.scanned, 0),
    nextCursor: one ? (servers[0]?.nextCursor ?? null) : null,
    exhausted: unfinished === undefined,
    stoppedBy: unfinished?.stoppedBy ?? 'end',
    servers,
    unavailable,
  };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Why the page ended, for the last line. */
const STOPPED: Readonly<Record<ScanStop, string>> = {
  limit: 'the page is full',
  'scan-bound': 'the scan reached its bound of ids (--scan)',
  deadline: 'the scan ran out of time',
  end: 'every id was scanned',
};

function printFailure(output: Output, failure: FailureSummary, count: number): void {
  output.print(`  failure:   ${terminalSafeText(`${failure.name}: ${failure.message}`)}`);
  if (failure.stackLine !== null) output.print(`             ${terminalSafeText(failure.stackLine)}`);
  const more = count > 1 ? ` (${count} failures recorded; bsworker peek shows them all)` : '';
  output.print(
    `             ${terminalSafeText(failure.reason)}, attempt ${failure.attempt}, kicks ${failure.kicks}, at ${terminalSafeText(failure.at)}${more}`,
  );
}

function printJobText(output: Output, job: BuriedListedJob): void {
  output.print(`  id:        ${job.id}`);
  if (job.raw === undefined) {
    // Escaped for the terminal: a hostile body must not send escape sequences to an operator's screen.
    output.print(`  func_name: ${terminalSafeJson(job.func_name)}`);
    output.print(`  kwargs:    ${terminalSafeJson(job.kwargs)}`);
  } else {
    const raw = job.raw.length > 200 ? `${job.raw.slice(0, 200)}…` : job.raw;
    output.print(`  body:      ${terminalSafeJson(raw)} (not a bsworker job: ${terminalSafeText(job.decodeError ?? 'unknown reason')})`);
  }
  // The summary names tasks from the body: escaped like the rest of it.
  if (job.flow !== undefined) output.print(`  flow:      ${terminalSafeText(job.flow)}`);
  if (job.kicks !== null) output.print(`  kicks:     ${job.kicks}`);
  if (job.ageSeconds !== null) output.print(`  age:       ${formatDuration(job.ageSeconds)}`);
  if (job.lastFailure) printFailure(output, job.lastFailure, job.failures);
  else output.print('  failure:   (no failure record in the body)');
}

function printBuriedText(output: Output, report: BuriedReport): void {
  const where = report.servers === undefined ? '' : ` (${report.servers.map((entry) => `${entry.server}: ${entry.buried}`).join(', ')})`;
  output.print(`tube ${report.tube}: ${plural(report.buried, 'buried job')}${report.servers?.length ? where : ''}`);
  for (const server of report.unavailable ?? []) output.print(`server ${server} is down: its buried jobs are not counted or listed`);
  if (report.servers !== undefined) {
    printSeveralPages(output, report, report.servers);
    return;
  }
  if (report.buried === 0 && report.jobs.length === 0 && report.scanned === 0) return;
  if (report.first) output.print(`next to be kicked: job ${report.first.id}`);
  output.print(`this page: ${plural(report.jobs.length, 'job')}, newest first (${plural(report.scanned, 'id')} scanned)`);
  for (const job of report.jobs) {
    output.print('');
    printJobText(output, job);
  }
  output.print('');
  if (report.exhausted) output.print(`no more buried jobs below (${STOPPED.end})`);
  else {
    output.print(
      `more may lie below id ${report.nextCursor} (${STOPPED[report.stoppedBy]}): bsworker buried --tube ${report.tube} --cursor ${report.nextCursor}`,
    );
  }
}

/** The pages of several servers: the jobs, then where each server's list goes on. */
function printSeveralPages(output: Output, report: BuriedReport, servers: readonly BuriedOnServer[]): void {
  if (report.first) output.print(`next to be kicked on the first server that has one: job ${report.first.id}`);
  if (servers.length === 0) return;
  output.print(`this page: ${plural(report.jobs.length, 'job')}, newest first on each server (${plural(report.scanned, 'id')} scanned)`);
  for (const job of report.jobs) {
    output.print('');
    printJobText(output, job);
  }
  output.print('');
  for (const entry of servers) {
    if (entry.exhausted) output.print(`${entry.server}: no more buried jobs below (${STOPPED.end})`);
    else {
      output.print(
        `${entry.server}: more may lie below id ${entry.nextCursor} (${STOPPED[entry.stoppedBy]}): bsworker buried --tube ${report.tube} --server ${entry.server} --cursor ${entry.nextCursor}`,
      );
    }
  }
}

/** The `buried` options, as commander parsed them. */
interface BuriedCommandOptions {
  tube: string;
  limit?: number;
  cursor?: string;
  scan?: number;
  json?: boolean;
  url?: string;
  server?: string;
}

/** `--cursor`: digits, as a page printed it. */
function parseCursorOption(value: string): string {
  if (!/^[0-9]{1,20}$/.test(value.trim())) throw new InvalidArgumentError('expected a cursor printed by an earlier page (digits)');
  return value.trim();
}

/** Registers `buried`. */
export function registerBuriedCommand(program: Command, output: Output): void {
  program
    .command('buried')
    .description("list a tube's buried jobs, newest first, a page at a time, each with its last failure")
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .option('--limit <n>', `jobs per page (default: ${SCAN_DEFAULTS.limit})`, integerIn(1, SCAN_MAX.limit))
    .option('--cursor <id>', 'go on below this id (printed at the end of the previous page)', parseCursorOption)
    .option('--scan <n>', `examine at most n job ids for this page (default: ${SCAN_DEFAULTS.scan})`, integerIn(1, SCAN_MAX.scan))
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .addHelpText(
      'after',
      '\nbeanstalkd cannot list jobs: the page is found by scanning recent job ids (see the README, "Listing jobs").\n\nExamples:\n  bsworker buried --tube emails\n  bsworker buried --tube emails --limit 100 --cursor 5120 --json',
    )
    .action(
      opsAction(async (options: BuriedCommandOptions, command: Command) => {
        const page = { limit: options.limit, cursor: options.cursor, scan: options.scan };
        const { report, configured } = await withAdmin(
          urlOf(command, options),
          async (admin) => ({ report: await readBuried(admin, options.tube, page), configured: admin.serverNames.length }),
          serverOf(options),
        );
        if (options.json) printJson(output, report);
        else printBuriedText(output, report);
        endIfPartial(report.unavailable, configured);
      }),
    );
}
