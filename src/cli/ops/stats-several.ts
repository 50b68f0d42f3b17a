/**
 * `bsworker stats` over several servers: every server, up or down, the totals over those that answered,
 * and each tube summed with its per-server breakdown. One server keeps the shape of `stats.ts`.
 */
import type { Admin } from '../../admin/admin.js';
import type { JobCounts, ServerReport, TubeOnServer, TubeReport } from '../../admin/types.js';
import { colors, formatDuration, type Output, printTable, terminalSafeText } from '../output.js';
import { type ServerSummary, serverSummary, type TubeSummary, tubeSummary } from './stats.js';

/** One server in {@link SeveralStatsJson}: `stats` null and `error` set when it did not answer. */
export interface ServerEntryJson {
  readonly server: string;
  readonly up: boolean;
  readonly error: string | null;
  readonly stats: ServerSummary | null;
}

/** A tube's counts on one server, in the shape of {@link TubeSummary} without the name. */
export type TubeOnServerJson = Omit<TubeSummary, 'name'> & { readonly server: string };

/**
 * What `bsworker stats --json` prints when several servers are configured (`--url a,b,c`):
 *
 * ```json
 * {
 *   "servers": [
 *     { "server": "127.0.0.1:11301", "up": true, "error": null, "stats": { "version": "1.12", ... } },
 *     { "server": "127.0.0.1:11302", "up": false, "error": "connect ECONNREFUSED ...", "stats": null }
 *   ],
 *   "totals": { "connections": 3, "jobs": { "ready": 5, "urgent": 0, "reserved": 0, "delayed": 0, "buried": 2, "total": 7 } },
 *   "tubes": [ { "name": "emails", "ready": 5, ..., "servers": [ { "server": "127.0.0.1:11301", "ready": 5, ... } ] } ],
 *   "unavailable": ["127.0.0.1:11302"]
 * }
 * ```
 * `totals` and the tubes cover the servers that answered; `unavailable` names the others.
 */
export interface SeveralStatsJson {
  readonly servers: readonly ServerEntryJson[];
  readonly totals: { readonly connections: number; readonly jobs: JobCounts };
  readonly tubes: readonly (TubeSummary & { readonly servers: readonly TubeOnServerJson[] })[];
  readonly unavailable: readonly string[];
}

const JOB_KEYS = ['ready', 'urgent', 'reserved', 'delayed', 'buried', 'total'] as const;

function onServer(tube: TubeOnServer): TubeOnServerJson {
  const { name: _, ...counts } = tubeSummary({ name: '', totals: tube, servers: [] });
  return { server: tube.server, ...counts };
}

/** The document of several servers, from one overview (or the servers and one tube with `tube`). */
export async function readSeveralStats(admin: Admin, tube?: string): Promise<SeveralStatsJson> {
  let servers: readonly ServerReport[];
  let tubes: readonly TubeReport[];
  if (tube === undefined) ({ servers, tubes } = await admin.overview());
  else [servers, tubes] = await Promise.all([admin.servers(), admin.tube(tube).then((one) => [one])]);
  const up = servers.filter((server) => server.stats !== null);
  const jobs = Object.fromEntries(
    JOB_KEYS.map((key) => [key, up.reduce((sum, server) => sum + (server.stats?.jobs[key] ?? 0), 0)]),
  ) as unknown as JobCounts;
  return {
    servers: servers.map((server) => ({
      server: server.server,
      up: server.up,
      error: server.error,
      stats: server.stats ? serverSummary(server.stats) : null,
    })),
    totals: { connections: up.reduce((sum, server) => sum + (server.stats?.connections ?? 0), 0), jobs },
    tubes: tubes.map((report) => ({ ...tubeSummary(report), servers: report.servers.map(onServer) })),
    unavailable: servers.filter((server) => !server.up).map((server) => server.server),
  };
}

/** Prints the servers' table (a down server as `down: why`), the totals, then each tube with a row per server. */
export function printSeveralStats(output: Output, report: SeveralStatsJson): void {
  const c = colors(output);
  const { jobs } = report.totals;
  printTable(
    output,
    ['server', 'state', 'version', 'uptime', 'connections', 'ready', 'reserved', 'delayed', 'buried', 'binlog'],
    report.servers.map((entry) => {
      const s = entry.stats;
      if (!s) return [entry.server, c.red(`down: ${terminalSafeText(entry.error ?? 'no answer')}`), '-', '-', '-', '-', '-', '-', '-', '-'];
      return [
        entry.server,
        s.draining ? c.yellow('draining') : 'up',
        s.version,
        formatDuration(s.uptimeSeconds),
        s.connections,
        s.jobs.ready,
        s.jobs.reserved,
        s.jobs.delayed,
        s.jobs.buried,
        s.binlog.enabled ? 'on' : c.yellow('off'),
      ];
    }),
  );
  const answered = report.servers.length - report.unavailable.length;
  output.print(
    `${c.bold('total')}  ${jobs.ready} ready (${jobs.urgent} urgent), ${jobs.reserved} reserved, ${jobs.delayed} delayed, ${jobs.buried} buried; ${jobs.total} put since start, on ${answered} of ${report.servers.length} servers`,
  );
  if (report.unavailable.length > 0) output.print(c.red(`down: ${report.unavailable.join(', ')} (not counted above)`));
  output.print('');
  const rows: (string | number)[][] = [];
  for (const t of report.tubes) {
    rows.push([t.name, t.ready, t.urgent, t.reserved, t.delayed, t.buried, t.total, t.watching, t.waiting, paused(t, c)]);
    for (const s of t.servers) {
      rows.push([`  ${s.server}`, s.ready, s.urgent, s.reserved, s.delayed, s.buried, s.total, s.watching, s.waiting, paused(s, c)]);
    }
  }
  printTable(
    output,
    ['tube / server', 'ready', 'urgent', 'reserved', 'delayed', 'buried', 'put (all time)', 'watching', 'waiting', 'paused'],
    rows,
  );
}

function paused(counts: { readonly pausedSecondsLeft: number }, c: ReturnType<typeof colors>): string {
  return counts.pausedSecondsLeft > 0 ? c.yellow(`${formatDuration(counts.pausedSecondsLeft)} left`) : '-';
}
