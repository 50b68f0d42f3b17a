/**
 * The one reader of beanstalkd's `stats` and `stats-tube` replies into the admin shapes, and the sum of
 * a tube over servers. Pure: no I/O, so every figure is testable without a server.
 */
import type { ServerStats, TubeStats } from '../beanstalk/types.js';
import type { ServerStatsReport, TubeCounts, TubeOnServer, TubeReport } from './types.js';

function count(stats: ServerStats, key: string): number {
  const value = Number(stats[key]);
  return Number.isFinite(value) ? value : 0;
}

/** A server's `stats` reply as {@link ServerStatsReport}. */
export function serverStatsReport(stats: ServerStats): ServerStatsReport {
  const currentIndex = count(stats, 'binlog-current-index');
  const counters: Record<string, number> = {};
  for (const [key, value] of Object.entries(stats)) {
    // Only counters: `version`, `hostname`, `id` and `os` are text (a version such as 1.10 would pass as a number).
    if (key === 'version' || key === 'id' || key === 'hostname' || key === 'os' || key === 'platform') continue;
    const number = typeof value === 'number' ? value : /^-?[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : Number.NaN;
    if (Number.isFinite(number)) counters[key] = number;
  }
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
    counters,
  };
}

/** A `stats-tube` reply as {@link TubeCounts}. */
export function tubeCounts(stats: TubeStats): TubeCounts {
  return {
    ready: stats.ready,
    urgent: stats.urgent,
    reserved: stats.reserved,
    delayed: stats.delayed,
    buried: stats.buried,
    total: stats.total,
    deletes: stats.deletes,
    using: stats.using,
    watching: stats.watching,
    waiting: stats.waiting,
    pauseSeconds: stats.pauseSeconds,
    pausedSecondsLeft: stats.pauseSeconds > 0 ? stats.pauseTimeLeftSeconds : 0,
  };
}

const ZERO: TubeCounts = Object.freeze({
  ready: 0,
  urgent: 0,
  reserved: 0,
  delayed: 0,
  buried: 0,
  total: 0,
  deletes: 0,
  using: 0,
  watching: 0,
  waiting: 0,
  pauseSeconds: 0,
  pausedSecondsLeft: 0,
});

/** The counts summed over servers; a pause is the longest one (a tube is paused where any server pauses it). */
export function sumCounts(all: readonly TubeCounts[]): TubeCounts {
  return all.reduce<TubeCounts>(
    (sum, c) => ({
      ready: sum.ready + c.ready,
      urgent: sum.urgent + c.urgent,
      reserved: sum.reserved + c.reserved,
      delayed: sum.delayed + c.delayed,
      buried: sum.buried + c.buried,
      total: sum.total + c.total,
      deletes: sum.deletes + c.deletes,
      using: sum.using + c.using,
      watching: sum.watching + c.watching,
      waiting: sum.waiting + c.waiting,
      pauseSeconds: Math.max(sum.pauseSeconds, c.pauseSeconds),
      pausedSecondsLeft: Math.max(sum.pausedSecondsLeft, c.pausedSecondsLeft),
    }),
    ZERO,
  );
}

/** Groups per-server tube counters (`[name, counters]`) by tube name, sorted by name (code-unit order, as `sort()` gives). */
export function tubeReports(entries: readonly (readonly [name: string, tube: TubeOnServer])[]): TubeReport[] {
  const byName = new Map<string, TubeOnServer[]>();
  for (const [name, tube] of entries) {
    const list = byName.get(name);
    if (list) list.push(tube);
    else byName.set(name, [tube]);
  }
  return [...byName.keys()].sort().map((name) => {
    const servers = byName.get(name) ?? [];
    return { name, totals: sumCounts(servers), servers };
  });
}
