/**
 * Pure pieces of the protocol: the reply each command expects, beanstalkd's replies turned into values
 * (stats records, a reserved job, an inserted id), and the message of a failed connect. No I/O. A reply
 * word other than the expected one becomes an error in ./errors.ts (errorFromReply).
 */
import type { ServerAddress } from './address.js';
import { ConnectionError } from './errors.js';
import type { JobStats, ReservedJob, TubeStats } from './types.js';

/** The error of a connect that failed, saying what to do about it. */
export function connectFailure(where: string, address: ServerAddress, error: NodeJS.ErrnoException): ConnectionError {
  const how =
    error.code === 'ECONNREFUSED'
      ? `: connection refused. Is beanstalkd running? Start one with \`beanstalkd -l ${address.host} -p ${address.port}\`, or point --url / BEANSTALKD_URL at your server`
      : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
        ? `: the host ${address.host} could not be resolved`
        : `: ${error.message}`;
  return new ConnectionError(where, `could not connect to beanstalkd at ${where}${how}`, { cause: error });
}

function num(record: Record<string, string>, key: string): number {
  const value = Number(record[key]);
  return Number.isFinite(value) ? value : 0;
}

/** A `stats-job` reply as {@link JobStats}. */
export function toJobStats(r: Record<string, string>, id: string): JobStats {
  return {
    id,
    tube: r.tube ?? '',
    state: r.state ?? '',
    priority: num(r, 'pri'),
    ageSeconds: num(r, 'age'),
    delaySeconds: num(r, 'delay'),
    ttrSeconds: num(r, 'ttr'),
    timeLeftSeconds: num(r, 'time-left'),
    reserves: num(r, 'reserves'),
    timeouts: num(r, 'timeouts'),
    releases: num(r, 'releases'),
    buries: num(r, 'buries'),
    kicks: num(r, 'kicks'),
  };
}

/** A `stats-tube` reply as {@link TubeStats}. */
export function toTubeStats(r: Record<string, string>, tube: string): TubeStats {
  return {
    name: tube,
    urgent: num(r, 'current-jobs-urgent'),
    ready: num(r, 'current-jobs-ready'),
    reserved: num(r, 'current-jobs-reserved'),
    delayed: num(r, 'current-jobs-delayed'),
    buried: num(r, 'current-jobs-buried'),
    total: num(r, 'total-jobs'),
    using: num(r, 'current-using'),
    watching: num(r, 'current-watching'),
    waiting: num(r, 'current-waiting'),
    deletes: num(r, 'cmd-delete'),
    pauseSeconds: num(r, 'pause'),
    pauseTimeLeftSeconds: num(r, 'pause-time-left'),
  };
}

/**
 * The reply word a command expects, and the word, if any, that means "nothing" (settles as null rather
 * than as an error: a reserve that times out, a peek that finds no job).
 */
export interface ExpectedReply {
  readonly word: string;
  readonly nullWord?: string;
}

/** The expected reply of every command bsworker sends (see ./encode.ts for the commands' bytes). */
export const EXPECT = Object.freeze({
  put: { word: 'INSERTED' },
  reserve: { word: 'RESERVED', nullWord: 'TIMED_OUT' },
  delete: { word: 'DELETED' },
  release: { word: 'RELEASED' },
  bury: { word: 'BURIED' },
  touch: { word: 'TOUCHED' },
  peek: { word: 'FOUND', nullWord: 'NOT_FOUND' },
  statsJob: { word: 'OK', nullWord: 'NOT_FOUND' },
  statsTube: { word: 'OK', nullWord: 'NOT_FOUND' },
  // A YAML body where beanstalkd never answers NOT_FOUND (`stats`, `list-tubes*`).
  yaml: { word: 'OK' },
  use: { word: 'USING' },
  watch: { word: 'WATCHING' },
  // beanstalkd answers NOT_IGNORED for the last tube watched: an error (UnexpectedReplyError), as before.
  ignore: { word: 'WATCHING' },
  kick: { word: 'KICKED' },
  kickJob: { word: 'KICKED' },
  pauseTube: { word: 'PAUSED' },
} satisfies Record<string, ExpectedReply>);

/** The count of a `WATCHING <count>` or `KICKED <count>` reply. */
export function countOf(words: string[]): number {
  return Number(words[1]);
}

/** The text of an `OK <bytes>` reply's YAML body. */
export function textOf(_words: string[], body: Buffer | undefined): string {
  return (body ?? Buffer.alloc(0)).toString('utf8');
}

/** The id of an `INSERTED <id>` reply. */
export function idOf(words: string[]): string {
  return words[1] ?? '';
}

/** The job of a `RESERVED <id> <bytes>` or `FOUND <id> <bytes>` reply. */
export function jobOf(words: string[], body: Buffer | undefined): ReservedJob {
  return { id: words[1] ?? '', body: body ?? Buffer.alloc(0) };
}

/** For replies that carry nothing. */
export function nothing(): void {}
