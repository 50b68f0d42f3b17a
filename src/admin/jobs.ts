/**
 * One job at a time: read it (by id, or the next of a tube in a state), list a tube's jobs (the scan of
 * `scan.ts`), kick it, delete it. Ids come in opaque and are located on their server (see `input.ts`).
 */
import { NotFoundError as BeanstalkNotFound } from '../beanstalk/errors.js';
import type { Beanstalk, JobStats, PeekedJob } from '../beanstalk/types.js';
import { barrierLeft } from '../flows/advance.js';
import { summariseFlow } from '../flows/describe.js';
import { describeJob } from './describe.js';
import { ConflictError, InvalidInputError, NotFoundError } from './errors.js';
import { checkInteger, checkTube, parseCursor } from './input.js';
import { downNote } from './read.js';
import { findHighestId, SCAN_DEFAULTS, SCAN_MAX, scanIds } from './scan.js';
import type { AdminServer } from './servers.js';
import { isDown } from './spread.js';
import type { DeleteJobResult, JobPage, JobReport, JobState, KickJobResult } from './types.js';
import { JOB_STATES } from './types.js';

/** A job id made opaque again: the server's own id while there is one server. */
export type IdFormatter = (server: AdminServer, id: string) => string;

function missing(id: string): NotFoundError {
  return new NotFoundError('JOB_NOT_FOUND', `job ${id} does not exist`);
}

/** The job's report, or {@link NotFoundError}. `shownId` is the id as the caller gave it. */
export async function readJob(server: AdminServer, id: string, shownId: string, formatId: IdFormatter): Promise<JobReport> {
  return server.run(async (connection) => {
    // Pipelined: the body and the counters in one round trip.
    const [job, stats] = await Promise.all([connection.peek(id), connection.statsJob(id)]);
    if (!job) throw missing(shownId);
    // Another client deleted it between the two commands.
    if (!stats) throw new NotFoundError('JOB_NOT_FOUND', `job ${shownId} was deleted while it was being read`);
    return withMembersLeft(connection, describeJob(server.name, formatId(server, id), stats, job.body, { detail: true }));
  });
}

/**
 * A group callback's report with the members still unfinished: one `stats-tube` of its barrier tube,
 * counted as the worker counts it, only in the job's own view (a list would pay one per callback). A
 * count that cannot be read stays null: the job is still shown.
 */
async function withMembersLeft(connection: Beanstalk, report: JobReport): Promise<JobReport> {
  const { flow } = report;
  if (!flow?.chord) return report;
  let membersLeft: number;
  try {
    membersLeft = await barrierLeft(connection, flow.chord);
  } catch (error) {
    if (isDown(error)) throw error;
    return report;
  }
  const parts = { ...flow, chord: { ...flow.chord, membersLeft } };
  return { ...report, flow: { ...parts, summary: summariseFlow(parts) } };
}

/** Checks a state name: one of {@link JOB_STATES}. */
export function checkState(state: unknown, allowed: readonly JobState[] = JOB_STATES): JobState {
  if (typeof state === 'string' && (allowed as readonly string[]).includes(state)) return state as JobState;
  throw new InvalidInputError('INVALID_OPTION', `Expected \`state\` to be one of ${allowed.join(', ')}, got ${JSON.stringify(state)}`);
}

/**
 * The next ready job of `tube` (the one a worker would reserve), the delayed job due first, or the
 * oldest buried job (the next one a kick moves), on the first server that has one. A server that is
 * down is passed over; every server down is the first one's error.
 */
export async function peekState(
  servers: readonly AdminServer[],
  tube: string,
  state: 'ready' | 'delayed' | 'buried',
  formatId: IdFormatter,
): Promise<JobReport> {
  checkTube(tube);
  checkState(state, ['ready', 'delayed', 'buried']);
  const down: string[] = [];
  let firstDown: unknown;
  for (const server of servers) {
    let found: JobReport | undefined;
    try {
      found = await server.inTube(tube, async (connection) => {
        const peek = {
          ready: () => connection.peekReady(),
          delayed: () => connection.peekDelayed(),
          buried: () => connection.peekBuried(),
        };
        const job = await peek[state]();
        if (!job) return undefined;
        const stats = await connection.statsJob(job.id);
        if (!stats) throw new NotFoundError('JOB_NOT_FOUND', `job ${job.id} was deleted while it was being read`);
        return withMembersLeft(connection, describeJob(server.name, formatId(server, job.id), stats, job.body, { detail: true }));
      });
    } catch (error) {
      if (!isDown(error)) throw error;
      down.push(server.name);
      firstDown ??= error;
      continue;
    }
    if (found) return found;
  }
  if (down.length === servers.length) throw firstDown;
  throw new NotFoundError('NO_JOB_IN_STATE', `no ${state} job in tube ${tube}${downNote(down)}`);
}

/** Options of {@link listJobs}; see `SCAN_DEFAULTS` for the defaults. */
export interface ListOptions {
  /** A `nextCursor` of an earlier page; undefined for the first page. */
  readonly cursor?: string | null;
  /** Jobs per page. @defaultValue 20 */
  readonly limit?: number;
  /** Ids examined per page at most. @defaultValue 5000 */
  readonly scan?: number;
  /** The page's time bound. @defaultValue 5000 */
  readonly timeoutMs?: number;
  /** Only jobs whose envelope names this task (exact). */
  readonly funcName?: string;
  /** Only jobs whose kwargs, as JSON, contain this text (case-insensitive). */
  readonly text?: string;
}

/** The longest `text` a find takes: it is matched against every listed job's kwargs. */
export const MAX_FIND_TEXT = 200;

/** The ids at the heads of every tube (`peek-ready`, `-delayed`, `-buried`), for {@link findHighestId}. */
async function headIds(server: AdminServer, connection: Beanstalk, deadline: number): Promise<string[]> {
  const ids: string[] = [];
  for (const tube of await connection.listTubes()) {
    // Bounded by the page's deadline: a server with many tubes gets a lower start, never a late page.
    if (Date.now() >= deadline) break;
    const heads = await server.inTube(tube, (used) => Promise.all([used.peekReady(), used.peekDelayed(), used.peekBuried()]));
    for (const head of heads) if (head) ids.push(head.id);
  }
  return ids;
}

/** Reads the options of a page, with their bounds. */
function pageBounds(options: ListOptions): { limit: number; scan: number; timeoutMs: number; cursor: bigint | undefined } {
  return {
    limit: checkInteger(options.limit ?? SCAN_DEFAULTS.limit, 'limit', 1, SCAN_MAX.limit),
    scan: checkInteger(options.scan ?? SCAN_DEFAULTS.scan, 'scan', 1, SCAN_MAX.scan),
    timeoutMs: checkInteger(options.timeoutMs ?? SCAN_DEFAULTS.timeoutMs, 'timeoutMs', 1, SCAN_MAX.timeoutMs),
    cursor: parseCursor(options.cursor),
  };
}

/**
 * The stats of the jobs of `tube` in `state` (every state when null) on `server`, newest first, with the
 * page's scan figures. The bodies are not read: see {@link listJobs} and the requeue.
 */
export async function scanTube(
  server: AdminServer,
  tube: string,
  state: JobState | null,
  options: ListOptions,
): Promise<{ matches: readonly JobStats[]; page: Omit<JobPage, 'jobs' | 'tube' | 'state'> }> {
  checkTube(tube);
  if (state !== null) checkState(state);
  const bounds = pageBounds(options);
  const deadline = Date.now() + bounds.timeoutMs;
  // The heads of a server with thousands of tubes take a round trip or two each: half the time at most.
  const headsDeadline = Date.now() + bounds.timeoutMs / 2;
  return server.run(async (connection) => {
    const start =
      bounds.cursor === undefined
        ? await findHighestId(connection, () => headIds(server, connection, headsDeadline), deadline)
        : bounds.cursor - 1n;
    const result = await scanIds(
      start,
      { limit: bounds.limit, scan: bounds.scan, inFlight: SCAN_DEFAULTS.inFlight, deadline },
      (id) => connection.statsJob(String(id)),
      (stats) => stats.tube === tube && (state === null || stats.state === state),
    );
    // Everything from `start` down to `lowest` was examined; the next page goes on below `lowest`.
    const below = result.lowest ?? start + 1n;
    const exhausted = result.stoppedBy === 'end' || below <= 1n;
    return {
      matches: result.matches,
      page: {
        server: server.name,
        scanned: result.scanned,
        startId: start >= 1n ? String(start) : null,
        nextCursor: exhausted ? null : String(below),
        exhausted,
        stoppedBy: exhausted ? 'end' : result.stoppedBy,
      },
    };
  });
}

/**
 * A page of a tube's jobs in `state` (every state when null), newest first, bodies decoded. With
 * `funcName` or `text`, only the jobs whose body matches, found within the page's bounds (see
 * {@link findJobs}).
 */
export async function listJobs(
  server: AdminServer,
  tube: string,
  state: JobState | null,
  options: ListOptions,
  formatId: IdFormatter,
): Promise<JobPage> {
  if (options.funcName !== undefined || options.text !== undefined) return findJobs(server, tube, state, options, formatId);
  const { matches, page } = await scanTube(server, tube, state, options);
  const jobs = await server.run(async (connection) => {
    // Pipelined: one round trip for every body of the page.
    const bodies = await Promise.all(matches.map((stats) => connection.peek(stats.id)));
    return matches.flatMap((stats, i) => {
      const job: PeekedJob | null | undefined = bodies[i];
      // Deleted between its stats-job and its peek: it is no longer there to list.
      return job ? [describeJob(server.name, formatId(server, stats.id), stats, job.body)] : [];
    });
  });
  return { tube, state, jobs, ...page };
}

/**
 * The jobs of a page that match `funcName` and `text`: the scan goes on in steps (each step's matches
 * read with one pipelined `peek` each) until `limit` jobs match or the page's `scan` and time bounds are
 * spent, so a find looks at as many ids as a plain page, never more. `nextCursor` continues below the
 * last id looked at.
 */
async function findJobs(
  server: AdminServer,
  tube: string,
  state: JobState | null,
  options: ListOptions,
  formatId: IdFormatter,
): Promise<JobPage> {
  const { funcName, text } = options;
  if (funcName !== undefined && (typeof funcName !== 'string' || funcName === '')) {
    throw new InvalidInputError('INVALID_FUNC_NAME', 'Expected `func_name` to be a non-empty string');
  }
  if (text !== undefined && (typeof text !== 'string' || text === '' || text.length > MAX_FIND_TEXT)) {
    throw new InvalidInputError('INVALID_OPTION', `Expected the search text to be 1 to ${MAX_FIND_TEXT} characters`);
  }
  const needle = text?.toLowerCase();
  const bounds = pageBounds(options);
  const deadline = Date.now() + bounds.timeoutMs;
  const jobs: JobReport[] = [];
  let cursor: string | null | undefined = options.cursor;
  let scanned = 0;
  let startId: string | null = null;
  let nextCursor: string | null = null;
  let exhausted = false;
  let stoppedBy: JobPage['stoppedBy'] = 'limit';
  for (;;) {
    const left = bounds.scan - scanned;
    const timeLeft = deadline - Date.now();
    if (left <= 0 || timeLeft <= 0) {
      stoppedBy = left <= 0 ? 'scan-bound' : 'deadline';
      break;
    }
    // Each step reads up to a step's worth of candidates in the tube and state.
    const step = await scanTube(server, tube, state, { cursor, limit: FIND_STEP, scan: left, timeoutMs: timeLeft });
    scanned += step.page.scanned;
    startId ??= step.page.startId;
    const bodies = await server.run((connection) => Promise.all(step.matches.map((stats) => connection.peek(stats.id))));
    let full = false;
    for (const [i, stats] of step.matches.entries()) {
      const job = bodies[i];
      if (!job) continue;
      const report = describeJob(server.name, formatId(server, stats.id), stats, job.body);
      if (funcName !== undefined && report.envelope?.func_name !== funcName) continue;
      if (
        needle !== undefined &&
        !JSON.stringify(report.envelope?.kwargs ?? report.raw ?? '')
          .toLowerCase()
          .includes(needle)
      )
        continue;
      jobs.push(report);
      if (jobs.length >= bounds.limit) {
        // Go on below this job next time: the candidates after it in this step were not looked at.
        nextCursor = stats.id;
        full = true;
        break;
      }
    }
    if (full) break;
    nextCursor = step.page.nextCursor;
    if (step.page.exhausted) {
      exhausted = true;
      stoppedBy = 'end';
      break;
    }
    if (step.page.stoppedBy !== 'limit') {
      stoppedBy = step.page.stoppedBy;
      break;
    }
    cursor = step.page.nextCursor;
  }
  return { server: server.name, tube, state, jobs, scanned, startId, nextCursor: exhausted ? null : nextCursor, exhausted, stoppedBy };
}

/** How many candidates one step of {@link findJobs} reads the bodies of. */
const FIND_STEP = 200;

/** Kicks one buried or delayed job. */
export async function kickOne(server: AdminServer, id: string, shownId: string): Promise<Omit<KickJobResult, 'id'>> {
  return server.run(async (connection) => {
    const stats = await connection.statsJob(id);
    if (!stats) throw missing(shownId);
    // Spelled out: JobStats.state admits any string, so a plain comparison would not narrow it.
    const from = stats.state === 'buried' ? 'buried' : stats.state === 'delayed' ? 'delayed' : undefined;
    if (from === undefined) {
      throw new ConflictError('WRONG_STATE', `job ${shownId} is ${stats.state}; only buried or delayed jobs can be kicked`);
    }
    try {
      await connection.kickJob(id);
    } catch (error) {
      if (error instanceof BeanstalkNotFound)
        throw new NotFoundError('JOB_NOT_FOUND', `job ${shownId} does not exist (it was deleted just now)`);
      throw error;
    }
    return { server: server.name, kicked: true, from, tube: stats.tube };
  });
}

function reservedError(id: string): ConflictError {
  return new ConflictError(
    'JOB_RESERVED',
    `job ${id} is reserved by a worker; only that worker can delete it. Try again once it is released or buried, or its TTR runs out`,
  );
}

/**
 * Deletes one job in any state but reserved. beanstalkd lets only the reserving connection delete a
 * reserved job and answers NOT_FOUND to everyone else, which would read as "no such job": stats-job
 * tells the two apart.
 */
export async function deleteOne(server: AdminServer, id: string, shownId: string): Promise<Omit<DeleteJobResult, 'id'>> {
  return server.run(async (connection) => {
    const stats = await connection.statsJob(id);
    if (!stats) throw missing(shownId);
    if (stats.state === 'reserved') throw reservedError(shownId);
    try {
      await connection.delete(id);
    } catch (error) {
      if (!(error instanceof BeanstalkNotFound)) throw error;
      // It changed between the two commands: a worker reserved it, or another client deleted it.
      const now = await connection.statsJob(id);
      throw now?.state === 'reserved'
        ? reservedError(shownId)
        : new NotFoundError('JOB_NOT_FOUND', `job ${shownId} does not exist (it was deleted just now)`);
    }
    return { server: server.name, tube: stats.tube, state: stats.state };
  });
}
