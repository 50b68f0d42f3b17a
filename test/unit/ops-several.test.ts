// The pure parts of several servers on the operating side: how a bound is shared between servers, the
// `--url` list and job-id parsers, and the exit code of output that misses a server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { allot } from '../../src/admin/spread.js';
import { EXIT, exitCodeFor, PartialError } from '../../src/cli/errors.js';
import { endIfPartial, parseJobRef, parseUrlList } from '../../src/cli/ops/common.js';
import { renderFrame, severalFrameJson, type TopSnapshot } from '../../src/cli/ops/top-frame.js';

describe('allot (a kick or delete bound over several servers)', () => {
  it('shares in proportion to each count, largest remainders first, and sums to the bound', () => {
    assert.deepEqual(allot(3, [6, 3, 0]), [2, 1, 0]);
    assert.deepEqual(allot(10, [1, 1, 1]), [1, 1, 1], 'a bound above the sum takes everything');
    assert.deepEqual(allot(undefined, [4, 0, 2]), [4, 0, 2]);
    assert.deepEqual(allot(2, [1, 1, 1]), [1, 1, 0], 'ties go to the earlier server');
    assert.deepEqual(allot(1, [1000, 1]), [1, 0]);
    assert.deepEqual(allot(5, [7]), [5], 'one server: min(bound, count)');
    assert.deepEqual(allot(4, [0, 0]), [0, 0]);
  });

  it('never gives a server more than it holds, whatever the counts', () => {
    for (let trial = 0; trial < 500; trial++) {
      const counts = Array.from({ length: 1 + (trial % 5) }, (_, i) => (trial * 7 + i * 13) % 11);
      const sum = counts.reduce((total, count) => total + count, 0);
      const bound = 1 + (trial % 17);
      const shares = allot(bound, counts);
      assert.equal(
        shares.reduce((total, share) => total + share, 0),
        Math.min(bound, sum),
      );
      for (const [i, share] of shares.entries()) assert.ok(share >= 0 && share <= (counts[i] as number), `${counts} ${bound} -> ${shares}`);
    }
  });
});

describe('--url lists and qualified job ids on the command line', () => {
  it('--url takes one server or a comma-separated list, and names a bad item', () => {
    assert.equal(parseUrlList('127.0.0.1:11300'), '127.0.0.1:11300');
    assert.equal(parseUrlList('a:1,b:2,beanstalk://c:3'), 'a:1,b:2,beanstalk://c:3');
    assert.throws(() => parseUrlList('a:1,,b:2'), InvalidArgumentError);
    assert.throws(() => parseUrlList('a:1,a:1'), /listed twice/);
    assert.throws(() => parseUrlList('a:1,b:99999'), /port/);
  });

  it('a job id is 42 or host:port/42; the server part must be an address', () => {
    assert.equal(parseJobRef('42'), '42');
    assert.equal(parseJobRef(' 127.0.0.1:11301/42 '), '127.0.0.1:11301/42');
    assert.equal(parseJobRef('[::1]:11300/7'), '[::1]:11300/7');
    assert.throws(() => parseJobRef('127.0.0.1:11301/x'), InvalidArgumentError);
    assert.throws(() => parseJobRef('bad host/42'), /server part/);
  });

  it('output that misses servers ends with exit 3 and a message naming them', () => {
    assert.doesNotThrow(() => endIfPartial([], 3));
    assert.doesNotThrow(() => endIfPartial(undefined, 1));
    assert.throws(
      () => endIfPartial(['127.0.0.1:11302'], 3),
      (error: unknown) =>
        error instanceof PartialError &&
        exitCodeFor(error) === EXIT.partial &&
        EXIT.partial === 3 &&
        /1 of 3 beanstalkd servers did not answer \(127\.0\.0\.1:11302\): the output covers the other 2/.test(error.message),
    );
  });
});

describe('top over several servers', () => {
  const stats = {
    version: '1.12',
    uptimeSeconds: 100,
    connections: 2,
    jobs: { ready: 3, urgent: 0, reserved: 0, delayed: 0, buried: 1, total: 4 },
    maxJobSize: 65_535,
    binlog: { enabled: false, currentIndex: 0, oldestIndex: 0, maxSizeBytes: 0, recordsWritten: 0, recordsMigrated: 0 },
    draining: false,
    counters: { 'cmd-delete': 0, 'total-jobs': 4 },
  };
  const snapshot: TopSnapshot = {
    at: '2026-12-02T15:00:00.000Z',
    servers: [
      { server: 'a:1', up: true, error: null, stats },
      { server: 'b:2', up: false, error: 'connect ECONNREFUSED b:2', stats: null },
    ],
    tubes: [],
    unavailable: ['b:2'],
  };

  it('names the down server in the frame, on a terminal and off one', () => {
    const plainLines = renderFrame(snapshot, null, { print: () => undefined, isTTY: false });
    assert.ok(plainLines.includes('2026-12-02T15:00:00Z down server=b:2 error="connect ECONNREFUSED b:2"'), plainLines.join('\n'));
    const frame = renderFrame(snapshot, null, { print: () => undefined, isTTY: true }).join('\n');
    assert.match(frame, /down: b:2 \(connect ECONNREFUSED b:2\); its tubes are not counted/);
  });

  it('--json lists every server, the totals of those that answered and who did not', () => {
    const json = severalFrameJson(snapshot, null);
    assert.deepEqual(
      json.servers.map((entry) => [entry.server, entry.up, entry.stats === null]),
      [
        ['a:1', true, false],
        ['b:2', false, true],
      ],
    );
    assert.deepEqual(json.totals, { connections: 2, jobs: stats.jobs, inPerSecond: null, donePerSecond: null });
    assert.deepEqual(json.unavailable, ['b:2']);
    assert.equal('counters' in (json.servers[0]?.stats ?? {}), false, 'the stats --json server shape, without counters');
  });
});
