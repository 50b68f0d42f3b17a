// The supervisor's pure parts: the arguments each child gets and the restart backoff.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { restartDelayMs, SUPERVISOR_DEFAULTS } from '../../src/cli/supervisor.js';
import { childArgs } from '../../src/cli/worker-flags.js';

describe('supervisor', () => {
  it('gives each child the worker flags, with the per-child limits as child flags', () => {
    const args = childArgs({
      processes: 4,
      tubes: ['emails', 'reports'],
      jobs: 'dist/jobs',
      url: '127.0.0.1:11301',
      maxKicks: 2,
      graceMs: 5_000,
      logLevel: 'debug',
      failureRecords: true,
      metricsHost: '127.0.0.1',
      maxJobsPerChild: 100,
      maxMemoryPerChild: 512,
      concurrency: 4,
      deadLetter: 'dl',
    });
    assert.deepEqual(args, [
      '--tubes',
      'emails,reports',
      '--jobs',
      'dist/jobs',
      '--url',
      '127.0.0.1:11301',
      '--concurrency',
      '4',
      '--max-kicks',
      '2',
      '--dead-letter',
      'dl',
      '--grace-ms',
      '5000',
      '--log-level',
      'debug',
      '--max-jobs',
      '100',
      '--max-memory-mb',
      '512',
    ]);
    assert.ok(!args.includes('--processes'), 'a child is an ordinary single-process worker');
  });

  it('leaves out --url and the limits when they were not given', () => {
    const args = childArgs({
      processes: 1,
      tubes: ['a'],
      jobs: './jobs',
      maxKicks: 3,
      graceMs: 30_000,
      logLevel: 'info',
      failureRecords: true,
      metricsHost: '127.0.0.1',
    });
    assert.deepEqual(args, ['--tubes', 'a', '--jobs', './jobs', '--max-kicks', '3', '--grace-ms', '30000', '--log-level', 'info']);
  });

  it('restarts after 1 s, doubling up to 30 s, spread over 80-100%', () => {
    const top = (): number => 0.999_999;
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 50].map((deaths) => restartDelayMs(deaths, top)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
    );
    assert.equal(
      restartDelayMs(0, () => 0),
      800,
    );
    assert.equal(
      restartDelayMs(9, () => 0),
      SUPERVISOR_DEFAULTS.restartMaxMs * 0.8,
    );
  });
});
