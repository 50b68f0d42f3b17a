// The chaos soak as a test: `soak/run.ts --quick` (about 25 s: load, a SIGKILL of beanstalkd and a few
// more random actions, then a drain) must account for every accepted job, and its counter must call a
// job lost, duplicated or of unknown outcome exactly when the records say so.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { count } from '../../soak/count.js';
import type { Summary } from '../../soak/report.js';
import type { PutRecord, RunRecord } from '../../soak/shared.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** --quick takes about 25 s; the bound leaves room for a busy 2-core machine. */
const SOAK_TIMEOUT_MS = 90_000;

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'BEANSTALKD_URL', 'LOG_LEVEL', 'BSWORKER_INLINE']) delete env[name];
  return env;
}

const put = (id: number, outcome: PutRecord['outcome'], kind: PutRecord['kind'] = 'fast'): PutRecord => ({ id, kind, outcome, at: 0 });
const run = (id: number, ok: boolean, kind: RunRecord['kind'] = 'fast'): RunRecord => ({ id, kind, attempt: 1, pid: 1, at: 0, ok });

describe('the soak counter', () => {
  it('calls an accepted job lost only when it neither succeeded, nor was dead-lettered, nor is still in a tube', () => {
    const counts = count({
      puts: [put(1, 'accepted'), put(2, 'accepted'), put(3, 'accepted', 'poison'), put(4, 'accepted'), put(5, 'accepted')],
      runs: [run(1, true), run(2, false), run(3, false, 'poison'), run(5, false)],
      deadLettered: [3],
      leftOver: [4],
    });
    assert.equal(counts.accepted, 5);
    assert.equal(counts.ran, 1);
    assert.equal(counts.deadLettered, 1);
    assert.equal(counts.leftInTube, 1);
    assert.equal(counts.lost, 2);
    assert.deepEqual(counts.lostIds, [2, 5]);
  });

  it('counts a second success as a duplicate, but an unknown-outcome put that ran as neither duplicate nor lost', () => {
    const counts = count({
      puts: [put(1, 'accepted'), { ...put(2, 'unknown'), error: 'ConnectionError' }, { ...put(3, 'rejected'), error: 'DrainingError' }],
      runs: [run(1, true), run(1, true), run(2, true), run(3, true)],
      deadLettered: [],
      leftOver: [],
    });
    assert.equal(counts.duplicates, 1);
    assert.equal(counts.extraRuns, 1);
    assert.equal(counts.unknownOutcome, 1);
    assert.equal(counts.unknownThatRan, 1);
    assert.equal(counts.rejectedButStored, 1);
    assert.equal(counts.lost, 0);
    assert.deepEqual(counts.putErrors, { 'ConnectionError (unknown)': 1, 'DrainingError (rejected)': 1 });
  });

  it('reports how many runs each dead-lettered poison job had', () => {
    const counts = count({
      puts: [put(1, 'accepted', 'poison'), put(2, 'accepted', 'poison')],
      runs: [1, 1, 1, 1, 2, 2].map((id) => run(id, false, 'poison')),
      deadLettered: [1, 2, 2],
      leftOver: [],
    });
    assert.deepEqual(counts.poisonRunsBeforeDeadLetter, { '4': 1, '2': 1 });
    assert.deepEqual(
      counts.shortPoison.map((p) => p.id),
      [2],
    );
    assert.equal(counts.duplicateDeadLetters, 1);
  });
});

describe('npm run soak -- --quick', { timeout: SOAK_TIMEOUT_MS + 10_000 }, () => {
  let dir: string;
  let code: number | null;
  let output: string;
  let summary: Summary;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bsworker-soak-test-'));
    const out = join(dir, 'summary.json');
    code = await new Promise<number | null>((resolve, reject) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(REPO, 'soak', 'run.ts'), '--quick', '--seed', '8', '--out', out],
        { cwd: REPO, env: childEnv(), timeout: SOAK_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          output = `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
          if (error && typeof error.code !== 'number') reject(new Error(`soak/run.ts --quick failed: ${error.message}\n${output}`));
          else resolve(typeof error?.code === 'number' ? error.code : 0);
        },
      );
    });
    summary = JSON.parse(await readFile(out, 'utf8')) as Summary;
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 with no lost job and prints the summary', () => {
    assert.equal(code, 0, output);
    assert.equal(summary.verdict, 'pass');
    assert.equal(summary.counts.lost, 0, output);
    assert.match(output, /bsworker chaos soak: PASS/);
    assert.match(output, /lost {10}0/);
  });

  it('ran real load and killed beanstalkd, which came back from its binlog', () => {
    const c = summary.counts;
    assert.ok(c.accepted > 1_000, `accepted ${c.accepted}`);
    assert.ok(c.acceptedByKind.poison > 0 && c.acceptedByKind.flaky > 0, JSON.stringify(c.acceptedByKind));
    assert.equal(summary.chaos.events[0]?.victim, 'beanstalkd');
    assert.equal(summary.chaos.events[0]?.action, 'kill');
    assert.ok(summary.beanstalkdStarts >= 2, `beanstalkd started ${summary.beanstalkdStarts} times`);
    assert.equal(summary.chaos.failed, 0, JSON.stringify(summary.chaos.events));
  });

  it('accounts for every accepted job: succeeded, dead-lettered or left in a tube', () => {
    const c = summary.counts;
    assert.equal(c.ran + c.deadLettered - c.ranAndDeadLettered + c.leftInTube + c.lost, c.accepted);
    assert.equal(c.poisonNotDeadLettered, 0, 'every poison job ends in the dead-letter tube');
    assert.ok(summary.drain.complete, `drain took ${summary.drain.ms} ms and did not finish`);
  });
});
