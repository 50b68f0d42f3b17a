/**
 * `bsworker stats` and `bsworker tubes`: what beanstalkd holds, server-wide and per tube. The figures
 * come from the admin layer; this file prints them, and keeps the documented `--json` shapes.
 */
import type { Command } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { UnavailableError } from '../../admin/errors.js';
import type { BinlogSummary, JobCounts, ServerStatsReport, TubeReport } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { colors, formatDuration, type Output, printJson, printTable } from '../output.js';
import { parseTube } from '../parse.js';
import { endIfPartial, jsonOption, opsAction, serverOf, serverOption, urlOf, urlOption } from './common.js';
import { printSeveralStats, readSeveralStats } from './stats-several.js';

export type { BinlogSummary, JobCounts };

/** The server-wide part of `bsworker stats --json`: the admin layer's server stats without `counters`. */
export type ServerSummary = Omit<ServerStatsReport, 'counters'>;

/** One tube in `bsworker stats --json` (its counts summed over the servers). */
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

/**
 * What `bsworker tubes --json` prints: every tube's name, sorted. With several servers configured,
 * `unavailable` names the servers that did not answer (their tubes are missing).
 */
export interface TubesJson {
  readonly tubes: readonly string[];
  readonly unavailable?: readonly string[];
}

/** The `stats --json` server object of one server's stats. */
export function serverSummary(stats: ServerStatsReport): ServerSummary {
  const { counters: _, ...summary } = stats;
  return summary;
}

/** The `stats --json` line of a tube. */
export function tubeSummary(tube: TubeReport): TubeSummary {
  const t = tube.totals;
  return {
    name: tube.name,
    ready: t.ready,
    urgent: t.urgent,
    reserved: t.reserved,
    delayed: t.delayed,
    buried: t.buried,
    total: t.total,
    watching: t.watching,
    waiting: t.waiting,
    pausedSecondsLeft: t.pausedSecondsLeft,
  };
}

/**
 * Reads the server summary and the tubes (all of them, or only `tube`): a tube given by name that does
 * not exist is the admin layer's NotFoundError.
 */
export async function readStats(admin: Admin, tube?: string): Promise<StatsJson> {
  const { servers, tubes } =
    tube === undefined
      ? await admin.overview()
      : await Promise.all([admin.servers(), admin.tube(tube)]).then(([all, one]) => ({ servers: all, tubes: [one] }));
  const first = servers[0];
  if (!first?.stats) throw new UnavailableError('SERVER_UNAVAILABLE', first?.server ?? '', first?.error ?? 'the server did not answer');
  return { server: serverSummary(first.stats), tubes: tubes.map(tubeSummary) };
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
    .addOption(serverOption())
    .action(
      opsAction(async (options: { tube?: string; json?: boolean; url?: string; server?: string }, command: Command) => {
        await withAdmin(
          urlOf(command, options),
          async (admin) => {
            if (!admin.several) {
              const report = await readStats(admin, options.tube);
              if (options.json) printJson(output, report);
              else printStats(output, report, admin.serverNames[0] ?? '');
              return;
            }
            const report = await readSeveralStats(admin, options.tube);
            if (options.json) printJson(output, report);
            else printSeveralStats(output, report);
            endIfPartial(report.unavailable, report.servers.length);
          },
          serverOf(options),
        );
      }),
    );

  program
    .command('tubes')
    .description('list the tubes the server knows, one per line')
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .action(
      opsAction(async (options: { json?: boolean; url?: string; server?: string }, command: Command) => {
        const { report, several, count } = await withAdmin(
          urlOf(command, options),
          async (admin) => ({ report: await admin.tubes(), several: admin.several, count: admin.serverNames.length }),
          serverOf(options),
        );
        const tubes = report.tubes.map((tube) => tube.name);
        if (options.json) printJson(output, (several ? { tubes, unavailable: report.unavailable } : { tubes }) satisfies TubesJson);
        else for (const tube of tubes) output.print(tube);
        // Off stdout (one tube per line is for scripts): the exit code and the error line say who is missing.
        if (several) endIfPartial(report.unavailable, count);
      }),
    );
}
