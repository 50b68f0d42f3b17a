/**
 * beanstalkd's `stats` as Prometheus metrics: which fields exist, and what each becomes. The names
 * follow one rule: `beanstalkd_` + the field with `-` as `_`, a unit suffix where the field has a unit
 * (`_seconds`, `_bytes`), and `_total` on counters. A fixed table (the fields of beanstalkd 1.12), so
 * that the set of metrics does not depend on what a server sends.
 */

/** One numeric field of `stats` and its metric. */
export interface StatField {
  /** The field as beanstalkd spells it. */
  readonly field: string;
  readonly metric: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
}

/** The commands beanstalkd 1.12 counts (`cmd-<command>`). */
const COMMANDS = [
  'put',
  'peek',
  'peek-ready',
  'peek-delayed',
  'peek-buried',
  'reserve',
  'reserve-with-timeout',
  'delete',
  'release',
  'use',
  'watch',
  'ignore',
  'bury',
  'kick',
  'touch',
  'stats',
  'stats-job',
  'stats-tube',
  'list-tubes',
  'list-tube-used',
  'list-tubes-watched',
  'pause-tube',
] as const;

const snake = (field: string): string => field.replaceAll('-', '_');

const counter = (field: string, help: string, unit = ''): StatField => ({
  field,
  metric: `beanstalkd_${snake(field)}${unit}_total`,
  type: 'counter',
  help,
});
const gauge = (field: string, help: string, unit = ''): StatField => ({
  field,
  metric: `beanstalkd_${snake(field)}${unit}`,
  type: 'gauge',
  help,
});

/** Every numeric field that becomes a metric. */
export const STAT_FIELDS: readonly StatField[] = Object.freeze([
  gauge('current-jobs-urgent', 'Ready jobs with priority < 1024, all tubes.'),
  gauge('current-jobs-ready', 'Ready jobs, all tubes.'),
  gauge('current-jobs-reserved', 'Jobs reserved by any client, all tubes.'),
  gauge('current-jobs-delayed', 'Delayed jobs, all tubes.'),
  gauge('current-jobs-buried', 'Buried jobs, all tubes.'),
  ...COMMANDS.map((command) => counter(`cmd-${command}`, `\`${command}\` commands received.`)),
  counter('job-timeouts', 'Reservations that ran out of TTR (the job went back to ready).'),
  counter('total-jobs', 'Jobs created since the server started.'),
  gauge('max-job-size', 'The largest job body the server accepts.', '_bytes'),
  gauge('current-tubes', 'Tubes that exist now.'),
  gauge('current-connections', 'Open connections.'),
  gauge('current-producers', 'Open connections that have put a job.'),
  gauge('current-workers', 'Open connections that have reserved a job.'),
  gauge('current-waiting', 'Connections waiting in a reserve.'),
  counter('total-connections', 'Connections opened since the server started.'),
  counter('rusage-utime', 'User CPU time of the server process.', '_seconds'),
  counter('rusage-stime', 'System CPU time of the server process.', '_seconds'),
  gauge('uptime', 'Seconds since the server started.', '_seconds'),
  gauge('binlog-oldest-index', 'Index of the oldest binlog file needed.'),
  gauge('binlog-current-index', 'Index of the binlog file being written.'),
  counter('binlog-records-migrated', 'Binlog records written as part of compaction.'),
  counter('binlog-records-written', 'Binlog records written.'),
  gauge('binlog-max-size', 'The size a binlog file grows to before a new one.', '_bytes'),
]);

/** `stats`' `draining`, as a number: 1 while the server refuses puts (SIGUSR1). */
export function drainingValue(value: string | number | undefined): number | undefined {
  if (value === 'true' || value === 1) return 1;
  if (value === 'false' || value === 0) return 0;
  return undefined;
}

/**
 * `stats`' `version`, when it looks like one: the value becomes a label, so anything else (long, odd
 * characters) is dropped.
 */
export function versionLabel(value: string | number | undefined): string | undefined {
  const text = value === undefined ? '' : String(value);
  return /^[0-9A-Za-z.+_-]{1,32}$/.test(text) ? text : undefined;
}
