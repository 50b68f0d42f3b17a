// Faults over several real servers (the "faults to prove"): three servers with binlogs, a
// producer putting a stream of numbered jobs, two workers at concurrency 8. One server is SIGKILLed in
// the middle and restarted on its port and binlog: every put that resolved runs at least once. A server
// down at start, and one that stops answering (SIGSTOP), hold up neither the workers nor the producer.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import pino from 'pino';
import { PutOutcomeUnknownError } from '../../src/beanstalk/errors.js';
import { splitJobId } from '../../src/servers/job-id.js';
import { JobQueue } from '../../src/tasks/queue.js';
import { Worker } from '../../src/worker/worker.js';
import { type BeanstalkdServer, freePort, startBeanstalkd } from '../helpers/beanstalkd.js';
import { freshTube, registry, until } from '../helpers/real-worker.js';

const silent = pino({ level: 'silent' });

/** Runs of each job number, by every worker of the test. */
function runLog(): { runs: Map<number, number>; record: (n: number) => void; total: () => number } {
  const runs = new Map<number, number>();
  let total = 0;
  return {
    runs,
    record: (n) => {
      runs.set(n, (runs.get(n) ?? 0) + 1);
      total += 1;
    },
    total: () => total,
  };
}

/** Starts a worker over `urls` at `concurrency`; the test stops it. */
async function startWorkerOn(t: { after(fn: () => Promise<void>): void }, urls: readonly string[], tube: string, concurrency: number) {
  const worker = new Worker({ tubes: [tube], url: urls, concurrency, logger: silent, connectTimeoutMs: 1_000 });
  t.after(async () => {
    await worker.stop({ force: true });
  });
  await worker.start();
  return worker;
}

describe('several servers: faults', () => {
  it('SIGKILL of one of three servers: the producer fails over within a second, the workers drain the others, and after a restart from its binlog every resolved put has run', {
    timeout: 90_000,
  }, async (t) => {
    const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), 'bsworker-several-'))));
    const servers: BeanstalkdServer[] = [];
    for (const binlogDir of dirs) servers.push(await startBeanstalkd({ binlogDir }));
    t.after(async () => {
      await Promise.all(servers.map((server) => server.stop('SIGKILL')));
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    });
    const urls = servers.map((server) => server.url);
    const tube = freshTube('faults');
    const log = runLog();
    const numbered = registry.task(tube)(function numbered(kw: { n: number }) {
      log.record(kw.n);
    });
    await startWorkerOn(t, urls, tube, 8);
    await startWorkerOn(t, urls, tube, 8);

    const queue = new JobQueue({ url: urls, logger: silent, connectTimeoutMs: 5_000 });
    t.after(() => queue.close());
    const put = (n: number) => queue.put(numbered, { n });
    const resolved = new Map<number, string>();
    const lost: number[] = [];
    const gaps: number[] = [];
    let killedAt = 0;
    let firstAfterKill = 0;
    const killed = servers[1] as BeanstalkdServer;
    let last = performance.now();
    let runsAtKill = 0;
    // Eight puts in flight at a time, as a busy producer has: the ones written to the server as it
    // dies may or may not have been inserted (PutOutcomeUnknownError), and are the caller's.
    const putOne = async (n: number): Promise<void> => {
      try {
        resolved.set(n, await put(n));
        const now = performance.now();
        gaps.push(now - last);
        last = now;
        if (killedAt > 0 && firstAfterKill === 0) firstAfterKill = now - killedAt;
      } catch (error) {
        assert.ok(error instanceof PutOutcomeUnknownError, String(error));
        lost.push(n);
      }
    };
    for (let n = 0; n < 3_000; n += 8) {
      if (n === 1_000) {
        await killed.stop('SIGKILL');
        killedAt = performance.now();
        runsAtKill = log.total();
      }
      await Promise.all(Array.from({ length: 8 }, (_, i) => putOne(n + i)));
    }
    // The workers did not stall on the dead server: they kept running jobs from the other two.
    assert.ok(log.total() > runsAtKill + 500, `${log.total() - runsAtKill} jobs ran after the kill, during the puts`);
    assert.ok(firstAfterKill < 1_000, `the producer failed over in ${Math.round(firstAfterKill)} ms`);
    assert.ok(Math.max(...gaps) < 1_000, `the longest wait between two puts was ${Math.round(Math.max(...gaps))} ms`);
    const onKilled = [...resolved.values()].filter((id) => splitJobId(id).server === killed.url).length;
    assert.ok(onKilled > 0, 'the killed server had taken puts before it died');

    // The two live servers drain while the third is down: every job put on them has run.
    const onLive = [...resolved].filter(([, id]) => splitJobId(id).server !== killed.url).map(([n]) => n);
    await until(
      () => onLive.filter((n) => !log.runs.has(n)).length,
      (left) => left === 0,
      20_000,
      'the jobs on the two live servers ran while the third was down',
    );

    const restarted = await startBeanstalkd({ port: killed.port, binlogDir: killed.binlogDir });
    servers[1] = restarted;
    await until(
      () => [...resolved.keys()].filter((n) => !log.runs.has(n)).length,
      (left) => left === 0,
      30_000,
      'every resolved put ran once its server was back',
    );
    const duplicates = [...log.runs.values()].filter((count) => count > 1).length;
    t.diagnostic(
      `${resolved.size} puts resolved (${onKilled} on the killed server), ${lost.length} in flight at the kill, ${duplicates} jobs ran more than once, failover ${Math.round(firstAfterKill)} ms`,
    );
  });

  it('a server down at start and one that stops answering: workers and producer go on, and pick them up again', {
    timeout: 60_000,
  }, async (t) => {
    const live = await startBeanstalkd();
    const stopped = await startBeanstalkd();
    const laterPort = await freePort();
    let later: BeanstalkdServer | undefined;
    t.after(async () => {
      process.kill(stopped.pid, 'SIGCONT');
      await Promise.all([live, stopped, ...(later ? [later] : [])].map((server) => server.stop('SIGKILL')));
    });
    const urls = [live.url, stopped.url, `127.0.0.1:${laterPort}`];
    const tube = freshTube('down');
    const log = runLog();
    const putter = registry.task(tube)(function counted(kw: { n: number }) {
      log.record(kw.n);
    });
    // The third server is not there at start: the worker starts on the other two.
    await startWorkerOn(t, urls, tube, 4);
    const queue = new JobQueue({ url: urls, logger: silent, connectTimeoutMs: 2_000 });
    t.after(() => queue.close());
    for (let n = 0; n < 50; n++) await queue.put(putter, { n });
    await until(log.total, (total) => total >= 50, 10_000, 'the jobs on the two servers ran');

    process.kill(stopped.pid, 'SIGSTOP');
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => queue.put(putter, { n: 100 + i })));
    const ok = results.filter((result) => result.status === 'fulfilled').length;
    assert.ok(ok >= 40, `${ok} of 60 puts resolved while one server was stopped`);
    await until(log.total, (total) => total >= 50 + ok - 30, 15_000, 'the live server drains while the other is stopped');

    later = await startBeanstalkd({ port: laterPort });
    process.kill(stopped.pid, 'SIGCONT');
    // Both come back into use: puts land on them and the worker runs what they hold.
    const ids: string[] = [];
    for (
      let n = 0;
      n < 200 && !(ids.some((id) => splitJobId(id).server === later?.url) && ids.some((id) => splitJobId(id).server === stopped.url));
      n++
    ) {
      ids.push(await queue.put(putter, { n: 1_000 + n }));
    }
    assert.ok(
      ids.some((id) => splitJobId(id).server === later?.url),
      'the server that came up later gets puts',
    );
    const mine = ids.map((_, i) => 1_000 + i);
    await until(
      () => mine.filter((n) => !log.runs.has(n)).length,
      (left) => left === 0,
      20_000,
      'the jobs on every server ran, the late one included',
    );
  });
});
