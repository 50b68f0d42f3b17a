/** `bsworker stats` and `bsworker tubes`: what beanstalkd holds, server-wide and per tube. */
import type { Command } from 'commander';
import { formatAddress } from '../../beanstalk/address.js';
import type { Beanstalk, ServerStats, TubeStats } from '../../beanstalk/types.js';
import { withConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import { colors, formatDuration, type Output, printJson, printTable } from '../output.js';
import { parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/** Job counts by state, server-wide or for one tube. */
export interface JobCounts {
  /** Jobs waiting to be reserved (`current-jobs-ready`). */
  readonly ready: number;
  /** Ready jobs with a priority below 1024 (`current-jobs-urgent`); a subset of `ready`. */
  readonly urgent: number;
  /** Jobs a worker holds now (`current-jobs-reserved`). */
  readonly reserved: number;
  /** Jobs waiting out their delay (`current-jobs-delayed`). */
  readonly delayed: number;
  /** Jobs set aside until kicked (`current-jobs-buried`). */
  readonly buried: number;
  /** Jobs put since the server (or the tube) came to be, including deleted ones (`total-jobs`). */
  readonly total: number;
}

/** The server's binlog (`-b DIR`): whether jobs survive a restart. */
export interface BinlogSummary {
  /** False when the server runs without `-b`: every job is lost when it stops. */
  readonly enabled: boolean;
  /** Index of the binlog file being written (`binlog-current-index`); 0 when disabled. */
  readonly currentIndex: number;
  /** Index of the oldest binlog file still needed (`binlog-oldest-index`). */
  readonly oldestIndex: number;
  /** Size at which a binlog file is closed and a new one started (`binlog-max-size`). */
  readonly maxSizeBytes: number;
  /** Records written since the server started (`binlog-records-written`). */
  readonly recordsWritten: number;
  /** Records copied forward to free old files (`binlog-records-migrated`). */
  readonly recordsMigrated: number;
}

/** The server-wide part of `bsworker stats --json`. */
export interface ServerSummary {
  /** beanstalkd's version string, such as `"1.12"`. */
  readonly version: string;
  readonly uptimeSeconds: number;
  /** Open client connections, this command's own included (`current-connections`). */
  readonly connections: number;
  readonly jobs: JobCounts;
  /** The largest job body the server accepts, in bytes (`max-job-size`). */
  readonly maxJobSize: number;
  readonly binlog: BinlogSummary;
  /** True after SIGUSR1: the server refuses `put` (`DRAINING`) but still hands out jobs. */
  readonly draining: boolean;
}

/** One tube in `bsworker stats --json`. */
export interface TubeSummary extends JobCounts {
  readonly name: string;
  /** Connections watching the tube (`current-watching`); every connection, this command's own included, watches `default`. */
  readonly watching: number;
  /** Connections blocked in a reserve on the tube (`current-waiting`). */
  readonly waiting: number;
  /** Seconds until a pause ends (`pause-time-left`); 0 when the tube is not paused. */
  readonly pausedSecondsLeft: number;
}

/**
 * What `bsworker stats --json` prints. A stable shape for scripts; tubes are sorted by name.
 *
 * ```json
 * {
 *   "server": {
 *     "version": "1.12", "uptimeSeconds": 3600, "connections": 4,
 *     "jobs": { "ready": 3, "urgent": 1, "reserved": 0, "delayed": 1, "buried": 1, "total": 5 },
 *     "maxJobSize": 65535,
 *     "binlog": { "enabled": false, "currentIndex": 0, "oldestIndex": 0, "maxSizeBytes": 10485760,
 *                 "recordsWritten": 0, "recordsMigrated": 0 },
 *     "draining": false
 *   },
 *   "tubes": [
 *     { "name": "emails", "ready": 3, "urgent": 1, "reserved": 0, "delayed": 1, "buried": 1, "total": 5,
 *       "watching": 0, "waiting": 0, "pausedSecondsLeft": 0 }
 *   ]
 * }
 * ```
 */
export interface StatsJson {
  readonly server: ServerSummary;
  /** Every tube, or only the one given with `--tube`. */
  readonly tubes: readonly TubeSummary[];
}

/** What `bsworker tubes --json` prints: every tube's name, sorted. */
export interface TubesJson {
  readonly tubes: readonly string[];
}

function count(stats: ServerStats, key: string): number {
  const value = Number(stats[key]);
  return Number.isFinite(value) ? value : 0;
}

/** The server-wide summary, from one `stats` reply. */
export function summariseServer(stats: ServerStats): ServerSummary {
  const currentIndex = count(stats, 'binlog-current-index');
  return {
    version: String(stats.version ?? 'unknown'),
    uptimeSeconds: count(stats, 'uptime'),
    connections: count(stats, 'current-connections'),
    jobs: {
      ready: count(stats, 'current-jobs-ready'),
      urgent: count(stats, 'current-jobs-urgent'),
      reserved: count(stats, 'current-jobs-reserved'),
      delayed: count(stats, 'current-jobs-delayed'),
      buried: count(stats, 'current-jobs-buried'),
      total: count(stats, 'total-jobs'),
    },
    maxJobSize: count(stats, 'max-job-size'),
    binlog: {
      // Without -b the server reports index 0; with it, the first binlog file is 1.
      enabled: currentIndex > 0,
      currentIndex,
      oldestIndex: count(stats, 'binlog-oldest-index'),
      maxSizeBytes: count(stats, 'binlog-max-size'),
      recordsWritten: count(stats, 'binlog-records-written'),
      recordsMigrated: count(stats, 'binlog-records-migrated'),
    },
    // Servers before 1.11 have no `draining` field; they cannot be told apart from "not draining".
    draining: String(stats.draining) === 'true',
  };
}

/** One tube's line of the summary. */
export function summariseTube(stats: TubeStats): TubeSummary {
  return {
    name: stats.name,
    ready: stats.ready,
    urgent: stats.urgent,
    reserved: stats.reserved,
    delayed: stats.delayed,
    buried: stats.buried,
    total: stats.total,
    watching: stats.watching,
    waiting: stats.waiting,
    pausedSecondsLeft: stats.pauseSeconds > 0 ? stats.pauseTimeLeftSeconds : 0,
  };
}

/** The message for a tube beanstalkd does not know, with the reason people are surprised by it. */
export function noSuchTube(tube: string): string {
  return `tube ${tube} does not exist (beanstalkd drops a tube once it holds no jobs and no client uses or watches it)`;
}

/**
 * Reads the server summary and the tubes (all of them, or only `tube`). A tube given by name that does
 * not exist is a {@link UsageError}; one that vanishes between `list-tubes` and its `stats-tube` is left
 * out, since it was empty and unused a moment ago.
 */
export async function readStats(connection: Beanstalk, tube?: string): Promise<StatsJson> {
  // Pipelined on the one connection (fivebeans matches replies in order): two round trips in all.
  const [server, listed] = await Promise.all([connection.stats(), tube === undefined ? connection.listTubes() : [tube]]);
  const tubeStats = await Promise.all([...listed].sort().map((name) => connection.statsTube(name)));
  if (tube !== undefined && tubeStats[0] === null) throw new UsageError(noSuchTube(tube));
  return {
    server: summariseServer(server),
    tubes: tubeStats.filter((stats): stats is TubeStats => stats !== null).map(summariseTube),
  };
}

/** Prints the summary as text: aligned `label  value` lines, then the per-tube table. */
export function printStats(output: Output, report: StatsJson, address: string): void {
  const c = colors(output);
  const { server } = report;
  const { jobs, binlog } = server;
  const lines: [string, string][] = [
    ['server', `beanstalkd ${server.version} at ${address}`],
    ['uptime', formatDuration(server.uptimeSeconds)],
    ['connections', String(server.connections)],
    [
      'jobs',
      `${jobs.ready} ready (${jobs.urgent} urgent), ${jobs.reserved} reserved, ${jobs.delayed} delayed, ${jobs.buried} buried; ${jobs.total} put since start`,
    ],
    ['max job size', `${server.maxJobSize} bytes`],
    [
      'binlog',
      binlog.enabled
        ? `on (file ${binlog.currentIndex}, oldest ${binlog.oldestIndex}, ${binlog.maxSizeBytes} bytes per file)`
        : // Said plainly because it decides whether a restart loses every job.
          c.yellow('off (jobs are lost when beanstalkd stops; start it with -b DIR to keep them)'),
    ],
  ];
  if (server.draining) lines.push(['draining', c.yellow('yes (put is refused; reserves still work)')]);
  const width = Math.max(...lines.map(([label]) => label.length));
  for (const [label, value] of lines) output.print(`${c.bold(label.padEnd(width))}  ${value}`);
  output.print('');
  printTable(
    output,
    // Not "total": it is every job ever put into the tube (deleted ones too), not a sum of the columns.
    ['tube', 'ready', 'urgent', 'reserved', 'delayed', 'buried', 'put (all time)', 'watching', 'waiting', 'paused'],
    report.tubes.map((t) => [
      t.name,
      t.ready,
      t.urgent,
      t.reserved,
      t.delayed,
      t.buried,
      t.total,
      t.watching,
      t.waiting,
      t.pausedSecondsLeft > 0 ? c.yellow(`${formatDuration(t.pausedSecondsLeft)} left`) : '-',
    ]),
  );
}

/** Registers `stats` and `tubes`. */
export function registerStatsCommands(program: Command, output: Output): void {
  program
    .command('stats')
    .description('show server counters and, per tube, jobs by state, watchers and pauses')
    .option('--tube <tube>', 'show only this tube', parseTube)
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: { tube?: string; json?: boolean; url?: string }, command: Command) => {
        await withConnection(urlOf(command, options), async (connection) => {
          const report = await readStats(connection, options.tube);
          if (options.json) printJson(output, report);
          else printStats(output, report, formatAddress(connection.address));
        });
      }),
    );

  program
    .command('tubes')
    .description('list the tubes the server knows, one per line')
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: { json?: boolean; url?: string }, command: Command) => {
        const tubes = (await withConnection(urlOf(command, options), (connection) => connection.listTubes())).sort();
        if (options.json) printJson(output, { tubes } satisfies TubesJson);
        else for (const tube of tubes) output.print(tube);
      }),
    );
}
