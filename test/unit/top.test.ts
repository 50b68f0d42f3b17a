/**
 * `bsworker top` without a server: the rates between two snapshots (never negative, absent rather than
 * wrong after a reset) and the frame, plain off a terminal and a table on one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ServerStatsReport, TubeCounts, TubeReport } from '../../src/admin/types.js';
import { computeRates, frameJson, renderFrame, type TopSnapshot } from '../../src/cli/ops/top-frame.js';
import type { Output } from '../../src/cli/output.js';

const plain: Output = { print: () => undefined, isTTY: false };
const terminal: Output = { print: () => undefined, isTTY: true };
const SERVER = '127.0.0.1:11300';

/** A tube on the one server, its `total` and `deletes` the counters the rates come from. */
function tube(name: string, totalJobs: number, deletes: number, counts: Partial<TubeCounts> = {}): TubeReport {
  const totals: TubeCounts = {
    ready: 0,
    urgent: 0,
    reserved: 0,
    delayed: 0,
    buried: 0,
    total: totalJobs,
    deletes,
    using: 0,
    watching: 0,
    waiting: 0,
    pauseSeconds: 0,
    pausedSecondsLeft: 0,
    ...counts,
  };
  return { name, totals, servers: [{ server: SERVER, ...totals }] };
}

const SERVER_STATS: Omit<ServerStatsReport, 'counters'> = {
  version: '1.12',
  uptimeSeconds: 100,
  connections: 2,
  jobs: { ready: 1, urgent: 0, reserved: 0, delayed: 0, buried: 0, total: 10 },
  maxJobSize: 65_535,
  binlog: { enabled: false, currentIndex: 0, oldestIndex: 0, maxSizeBytes: 0, recordsWritten: 0, recordsMigrated: 0 },
  draining: false,
};

/** A reading of the one server; `server` overrides its connections, totals and uptime. */
function snapshot(
  at: string,
  tubes: TubeReport[],
  server: Partial<{ connections: number; totalJobs: number; deletes: number; uptimeSeconds: number }> = {},
): TopSnapshot {
  const totalJobs = server.totalJobs ?? tubes.reduce((sum, t) => sum + t.totals.total, 0);
  const deletes = server.deletes ?? tubes.reduce((sum, t) => sum + t.totals.deletes, 0);
  const stats: ServerStatsReport = {
    ...SERVER_STATS,
    connections: server.connections ?? 2,
    uptimeSeconds: server.uptimeSeconds ?? 100,
    jobs: { ...SERVER_STATS.jobs, total: totalJobs },
    counters: { 'cmd-delete': deletes, 'total-jobs': totalJobs },
  };
  return { at: new Date(at).toISOString(), servers: [{ server: SERVER, up: true, error: null, stats }], tubes, unavailable: [] };
}

describe('computeRates', () => {
  const first = snapshot('2026-11-24T03:00:00Z', [tube('emails', 10, 4), tube('reports', 5, 5)]);

  it('has no rates on the first frame, or for an interval that is not positive', () => {
    assert.equal(computeRates(undefined, first, 1), null);
    assert.equal(computeRates(first, first, 0), null);
    assert.equal(computeRates(first, first, Number.NaN), null);
  });

  it('divides the growth of total-jobs (in) and cmd-delete (done) by the seconds between frames', () => {
    const next = snapshot('2026-11-24T03:00:02Z', [tube('emails', 18, 10), tube('reports', 5, 5)], { uptimeSeconds: 102 });
    const rates = computeRates(first, next, 2);
    assert.deepEqual(rates?.server, { inPerSecond: 4, donePerSecond: 3 });
    assert.deepEqual(rates?.tubes.get('emails'), { inPerSecond: 4, donePerSecond: 3 });
    assert.deepEqual(rates?.tubes.get('reports'), { inPerSecond: 0, donePerSecond: 0 });
  });

  it('gives no rate to a new tube, or to one whose counters shrank (dropped and created again)', () => {
    const next = snapshot('2026-11-24T03:00:01Z', [tube('emails', 2, 0), tube('reports', 6, 5), tube('new', 3, 0)], {
      totalJobs: 100,
      deletes: 100,
      uptimeSeconds: 101,
    });
    const rates = computeRates(first, next, 1);
    assert.equal(rates?.tubes.has('emails'), false, 'counters went back: no negative rate');
    assert.equal(rates?.tubes.has('new'), false);
    assert.deepEqual(rates?.tubes.get('reports'), { inPerSecond: 1, donePerSecond: 0 });
    for (const rate of [rates?.server, ...(rates?.tubes.values() ?? [])]) {
      assert.ok(rate && rate.inPerSecond >= 0 && rate.donePerSecond >= 0);
    }
  });

  it('has no rates after a server restart (uptime went back), even where counters happen to have grown', () => {
    const next = snapshot('2026-11-24T03:00:01Z', [tube('emails', 20, 10), tube('reports', 9, 9)], { uptimeSeconds: 3 });
    assert.equal(computeRates(first, next, 1), null);
  });
});

describe('renderFrame', () => {
  const at = '2026-11-24T03:00:00Z';
  const frame = snapshot(at, [tube('emails', 10, 4, { ready: 3, reserved: 1, buried: 2, watching: 1 }), tube('reports', 5, 5)]);
  const later = snapshot(
    '2026-11-24T03:00:01Z',
    [tube('emails', 14, 7, { ready: 3, reserved: 1, buried: 2, watching: 1 }), tube('reports', 5, 5)],
    {
      uptimeSeconds: 101,
    },
  );

  it('off a terminal: one server line and one key=value line per tube, rates "-" on the first frame', () => {
    assert.deepEqual(renderFrame(frame, null, plain), [
      `${at} server connections=2 tubes=2 in/s=- done/s=-`,
      `${at} tube=emails ready=3 reserved=1 delayed=0 buried=2 waiting=0 watching=1 in/s=- done/s=-`,
      `${at} tube=reports ready=0 reserved=0 delayed=0 buried=0 waiting=0 watching=0 in/s=- done/s=-`,
    ]);
  });

  it('off a terminal: rates with one decimal, and no escape codes even with context', () => {
    const lines = renderFrame(later, computeRates(frame, later, 1), plain, { address: '127.0.0.1:11300', error: 'lost', maxLines: 2 });
    assert.equal(
      lines[1],
      '2026-11-24T03:00:01Z tube=emails ready=3 reserved=1 delayed=0 buried=2 waiting=0 watching=1 in/s=4.0 done/s=3.0',
    );
    assert.match(lines[0] ?? '', / in\/s=4\.0 done\/s=3\.0$/);
    assert.equal(lines.length, 3, 'the plain view is never cut');
    assert.ok(!lines.join('\n').includes('\x1b'));
  });

  it('on a terminal: a title, a server line and a table with a row per tube', () => {
    const lines = renderFrame(later, computeRates(frame, later, 1), terminal, { address: '127.0.0.1:11300', intervalSeconds: 1 });
    const text = lines.join('\n');
    assert.match(lines[0] ?? '', /bsworker top 127\.0\.0\.1:11300/);
    assert.match(text, /server: 2 connections, 2 tubes, in 4\.0 jobs\/s, done 3\.0 jobs\/s/);
    const row = lines.find((line) => line.includes('emails'));
    assert.ok(row, text);
    assert.deepEqual(
      row
        .split('│')
        .map((cell) => cell.trim())
        .filter((cell) => cell !== ''),
      ['emails', '3', '1', '0', '2', '0', '1', '4.0', '3.0'],
    );
  });

  it('on a terminal: shows an error above the last counts, and cuts the table to the height given', () => {
    const many = snapshot(
      at,
      Array.from({ length: 30 }, (_, i) => tube(`t${String(i).padStart(2, '0')}`, 0, 0)),
    );
    const lines = renderFrame(many, null, terminal, { error: 'lost the connection', maxLines: 12 });
    assert.ok(lines.length <= 12, `${lines.length} lines`);
    assert.ok(lines.some((line) => line.includes('lost the connection') && line.includes('retrying')));
    assert.match(lines.at(-1) ?? '', /and \d+ more tubes/);
    assert.equal(renderFrame(many, null, terminal).length, 2 + 3 + 30, 'without a height every tube is shown');
  });
});

describe('renderFrame at a fixed terminal width', () => {
  // Colour codes take no room on the screen: measure what is shown.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping escape codes is the point.
  const visible = (line: string): number => line.replace(/\x1b\[[0-9;]*m/g, '').length;
  const at = '2026-11-24T03:00:00Z';
  const context = { address: '127.0.0.1:11300', intervalSeconds: 1 };
  const wide = snapshot(at, [
    tube('default', 0, 0, { watching: 2 }),
    tube('emails', 10, 4, { ready: 16, reserved: 1, buried: 2 }),
    tube('a-very-long-tube-name-for-the-nightly-reports', 5, 5, { ready: 1234567 }),
  ]);

  it('at 80 columns no line is wider than 80: columns are dropped and long tube names cut with an ellipsis', () => {
    const lines = renderFrame(wide, null, terminal, { ...context, maxColumns: 80 });
    const text = lines.join('\n');
    for (const line of lines) assert.ok(visible(line) <= 80, `${visible(line)} columns: ${line}`);
    const header = lines.find((line) => line.includes('tube') && line.includes('ready'));
    assert.ok(header, text);
    for (const kept of ['ready', 'reserved', 'buried', 'in/s', 'done/s']) assert.ok(header.includes(kept), `${kept} is kept: ${header}`);
    assert.ok(text.includes('a-very-long'), text);
    assert.ok(!text.includes('a-very-long-tube-name-for-the-nightly-reports'), 'the long name is cut');
    assert.match(text, /a-very-long[^│]*…/);
    assert.ok(text.includes('1234567'), 'counts are never cut');
  });

  it('at 40 columns too, and with room to spare nothing is dropped or cut', () => {
    for (const line of renderFrame(wide, null, terminal, { ...context, maxColumns: 40 })) {
      assert.ok(visible(line) <= 40, `${visible(line)} columns: ${line}`);
    }
    const roomy = renderFrame(wide, null, terminal, { ...context, maxColumns: 200 }).join('\n');
    assert.ok(roomy.includes('a-very-long-tube-name-for-the-nightly-reports'));
    for (const column of ['delayed', 'waiting', 'watching']) assert.ok(roomy.includes(column), column);
  });
});

describe('frameJson (top --json)', () => {
  it('has the stats --json shapes for the server and each tube, the rates, and the time of the reading', () => {
    const summary = (name: string, total: number) => ({
      name,
      ready: 1,
      urgent: 0,
      reserved: 0,
      delayed: 0,
      buried: 0,
      total,
      watching: 1,
      waiting: 0,
      pausedSecondsLeft: 0,
    });
    const first = snapshot('2026-11-24T03:00:00Z', [tube('emails', 10, 4, { ready: 1, watching: 1 })], { totalJobs: 10 });
    const next = snapshot('2026-11-24T03:00:02Z', [tube('emails', 14, 6, { ready: 1, watching: 1 })], {
      totalJobs: 14,
      uptimeSeconds: 102,
    });
    assert.deepEqual(frameJson(first, null), {
      at: '2026-11-24T03:00:00.000Z',
      server: { ...SERVER_STATS, jobs: { ...SERVER_STATS.jobs, total: 10 }, inPerSecond: null, donePerSecond: null },
      tubes: [{ ...summary('emails', 10), inPerSecond: null, donePerSecond: null }],
    });
    const json = frameJson(next, computeRates(first, next, 2));
    assert.deepEqual(json.tubes[0], { ...summary('emails', 14), inPerSecond: 2, donePerSecond: 1 });
    assert.equal(json.server.inPerSecond, 2);
    assert.equal(json.server.uptimeSeconds, 102);
    assert.ok(!('counters' in json.server), 'the server object is the stats --json one, without the raw counters');
  });

  it('a server restart (uptime back) or a different set of servers answering gives no rates', () => {
    const first = snapshot('2026-11-24T03:00:00Z', [tube('emails', 10, 4)]);
    const down: TopSnapshot = { ...first, servers: [{ server: SERVER, up: false, error: 'refused', stats: null }] };
    assert.equal(computeRates(first, down, 1), null);
    assert.equal(computeRates(down, first, 1), null);
  });
});
