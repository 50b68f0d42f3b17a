// `bsworker scheduler` and `bsworker schedules` as child processes: the status before and after a
// scheduler is active, and takeover under SIGKILL at each step of a tick, through a proxy that kills
// the active scheduler just before a chosen command reaches the server. What a takeover may duplicate
// is exactly one tick (the job put, the next marker not yet): the test asserts that and that no tick
// is missed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeanstalkConnection } from '../../src/beanstalk/connection.js';
import { type BeanstalkdServer, rawPut, startBeanstalkd } from '../helpers/beanstalkd.js';
import { Cli, children, prefix, run, writeFixtureJobs } from '../helpers/cli.js';
import { drainTicks } from '../helpers/schedules.js';
import { startProxy } from '../helpers/tcp-proxy.js';

const EVERY_SECOND = '*/1 * * * * *';
const LEASE_TTR = '3';

describe('bsworker scheduler and schedules', () => {
  let server: BeanstalkdServer;
  let dir: string;
  before(async () => {
    server = await startBeanstalkd();
    dir = await mkdtemp(join(tmpdir(), 'bsworker-schedules-'));
    await writeFixtureJobs(dir, { typescript: false });
  });
  after(async () => {
    for (const cli of children) if (!cli.exit) cli.child.kill('SIGKILL');
    await Promise.all([...children].map((cli) => cli.exited));
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (p: string): Record<string, string> => ({ FIXTURE_PREFIX: p, FIXTURE_SCHEDULE_CRON: EVERY_SECOND });
  const scheduler = (p: string, url: string): Cli => new Cli(['scheduler', '--jobs', dir, '--url', url, '--lease-ttr', LEASE_TTR], env(p));
  const isActive = (line: Record<string, unknown>): boolean => line.msg === 'scheduler active';

  it('schedules lists the schedule (not yet armed, no active scheduler), then its marker and the active scheduler, as text and --json', async () => {
    const p = prefix('sched');
    const before = await run(['schedules', '--jobs', dir, '--url', server.url, '--json'], env(p));
    assert.equal(before.code, 0, before.stderr);
    const idle = JSON.parse(before.stdout);
    assert.equal(idle.server, server.url);
    const mine = idle.schedules.find((entry: { name: string }) => entry.name === `${p}-every`);
    assert.equal(mine.cron, EVERY_SECOND);
    assert.equal(mine.timezone, 'UTC');
    assert.equal(mine.catchUp, 'skip');
    assert.deepEqual(mine.task, { tube: `${p}-ticks`, name: 'tick' });
    assert.equal(mine.tube, `bsworker.schedule.${p}-every`);
    assert.equal(mine.marker, 'not armed');
    assert.ok(Date.parse(mine.nextRun) > Date.now() - 1_000);
    const text = await run(['schedules', '--jobs', dir, '--url', server.url], env(p));
    assert.match(text.stdout, /no active scheduler/);
    assert.match(text.stdout, /\(not yet armed\)/);

    const active = scheduler(p, server.url);
    await active.waitForLine(isActive, 'scheduler active');
    const now = await run(['schedules', '--jobs', dir, '--url', server.url, '--json'], env(p));
    assert.equal(now.code, 0, now.stderr);
    const status = JSON.parse(now.stdout);
    assert.equal(status.active.pid, active.child.pid);
    assert.equal(status.active.holding, true);
    const armed = status.schedules.find((entry: { name: string }) => entry.name === `${p}-every`);
    assert.ok(['delayed', 'ready', 'reserved'].includes(armed.marker), armed.marker);
    const shown = await run(['schedules', '--jobs', dir, '--url', server.url], env(p));
    assert.match(shown.stdout, new RegExp(`active scheduler: .* pid ${active.child.pid} since `));
    assert.match(shown.stdout, new RegExp(`${p}-every .*\\*/1 \\* \\* \\* \\* \\* .*UTC .*${p}-ticks:tick`));

    // A graceful stop hands the lease back: the info job's lease is no longer reserved.
    active.signal('SIGTERM');
    assert.equal((await active.waitForExit()).code, 0);
    const stale = JSON.parse((await run(['schedules', '--jobs', dir, '--url', server.url, '--json'], env(p))).stdout);
    assert.equal(stale.active.holding, false);
    assert.match(
      (await run(['schedules', '--jobs', dir, '--url', server.url], env(p))).stdout,
      /no active scheduler.*no longer holds its lease/,
    );
  });

  /**
   * The steps of a tick at which the active scheduler is killed, each seen in what it writes: the
   * scheduled job's put (its body has `func_name` and `meta`), the next marker's put (its body has
   * `cron`), the reserved marker's delete.
   */
  const steps = [
    { step: 'before the job put', duplicates: 0 },
    { step: 'between the job put and the next marker put', duplicates: 1 },
    { step: 'between the next marker put and the marker delete', duplicates: 0 },
  ] as const;

  for (const { step, duplicates } of steps) {
    it(`SIGKILL ${step}: the standby takes over at once, ${duplicates === 0 ? 'no tick twice' : 'that one tick twice (same meta tick)'}, none missed`, async () => {
      const p = prefix('take');
      let armed = false;
      let killedTick: string | undefined;
      let jobPut = false;
      let markerPut = false;
      let victim: Cli | undefined;
      const kill = (): 'drop' => {
        victim?.child.kill('SIGKILL');
        armed = false;
        return 'drop';
      };
      const proxy = await startProxy(server.port, {
        onClientData: (chunk) => {
          if (!armed) return 'forward';
          const text = chunk.toString('latin1');
          const isJob = text.includes('"func_name"') && text.includes('"meta"');
          if (isJob) {
            killedTick = /"tick":"([^"]+)"/.exec(text)?.[1];
            if (step === 'before the job put') return kill();
            jobPut = true;
            return 'forward';
          }
          if (jobPut && !markerPut && text.includes('"cron"')) {
            if (step === 'between the job put and the next marker put') return kill();
            markerPut = true;
            return 'forward';
          }
          if (markerPut && /(^|\n)delete /.test(text)) return kill();
          return 'forward';
        },
      });
      try {
        victim = scheduler(p, proxy.url);
        await victim.waitForLine(isActive, 'the first scheduler active');
        const standby = scheduler(p, server.url);
        await standby.waitForLine((line) => line.msg === 'scheduler started; waiting for the lease', 'the second scheduler waiting');
        armed = true;
        const killed = victim.exited;
        const tookOver = standby.waitForLine(isActive, 'the second scheduler active', 6_000);
        const ticks = await drainTicks(server.url, `${p}-ticks`, (seen) => {
          const last = seen.at(-1);
          return killedTick !== undefined && last !== undefined && Date.parse(last.tick) >= Date.parse(killedTick) + 2_000;
        });
        assert.equal((await killed).signal, 'SIGKILL');
        await tookOver;
        assert.ok(killedTick !== undefined, 'the kill happened');
        const counts = new Map<string, number>();
        for (const { tick } of ticks) counts.set(tick, (counts.get(tick) ?? 0) + 1);
        assert.equal(counts.get(killedTick), 1 + duplicates, `tick ${killedTick} put ${1 + duplicates} time(s): ${JSON.stringify(ticks)}`);
        for (const [tick, count] of counts) if (tick !== killedTick) assert.equal(count, 1, `tick ${tick} once`);
        const times = [...counts.keys()].map(Date.parse).sort((a, b) => a - b);
        for (let i = 1; i < times.length; i += 1)
          assert.equal((times[i] ?? 0) - (times[i - 1] ?? 0), 1_000, `no tick missed: ${JSON.stringify([...counts.keys()])}`);
        standby.signal('SIGTERM');
        assert.equal((await standby.waitForExit()).code, 0);
      } finally {
        await proxy.close();
      }
    });
  }

  it('SIGSTOP: the standby takes over within the lease TTR; the stopped one, resumed, finds its lease gone and stands by; no tick twice', async () => {
    const p = prefix('stop');
    const first = scheduler(p, server.url);
    await first.waitForLine(isActive, 'the first scheduler active');
    const second = scheduler(p, server.url);
    await second.waitForLine((line) => line.msg === 'scheduler started; waiting for the lease', 'the second scheduler waiting');
    const stoppedAt = Date.now();
    first.signal('SIGSTOP');
    try {
      await second.waitForLine(isActive, 'the second scheduler active', (Number(LEASE_TTR) + 3) * 1_000);
      assert.ok(Date.now() - stoppedAt <= (Number(LEASE_TTR) + 2) * 1_000, `took over in ${Date.now() - stoppedAt} ms`);
    } finally {
      first.signal('SIGCONT');
    }
    await first.waitForLine((line) => String(line.msg).startsWith('scheduler no longer active'), 'the resumed scheduler standing by');
    const resumedAt = Date.now();
    const ticks = await drainTicks(server.url, `${p}-ticks`, (seen) =>
      seen.at(-1) ? Date.parse(seen.at(-1)?.tick ?? '') >= resumedAt + 2_000 : false,
    );
    const counted = new Set(ticks.map((entry) => entry.tick));
    assert.equal(counted.size, ticks.length, `no tick twice: ${JSON.stringify(ticks.map((entry) => entry.tick))}`);
    assert.equal(first.lines.filter(isActive).length, 1, 'the resumed scheduler did not become active again');
    second.signal('SIGTERM');
    first.signal('SIGTERM');
    assert.equal((await second.waitForExit()).code, 0);
    assert.equal((await first.waitForExit()).code, 0);
  });

  it('a worker with --scheduler --processes 2 runs one scheduler, in child 0, and its ticks are put', async () => {
    const p = prefix('wsch');
    const pool = new Cli(['--tubes', `${p}-ticks`, '--jobs', dir, '--url', server.url, '--scheduler', '--processes', '2'], env(p));
    const put = (line: Record<string, unknown>): boolean => line.msg === 'scheduled job put';
    await pool.waitForLine((line) => pool.lines.filter(put).length >= 2 && put(line), 'two scheduled jobs put');
    const started = pool.lines.filter((line) => line.msg === 'scheduler started beside the worker');
    assert.equal(started.length, 1, 'one child runs the scheduler');
    assert.equal(started[0]?.child, 0);
    assert.equal(new Set(pool.lines.filter(put).map((line) => line.pid)).size, 1);
    pool.signal('SIGTERM');
    assert.equal((await pool.waitForExit()).code, 0);
  });

  it('schedules escapes what it reads from the server: an info job with control characters in its host', async () => {
    const p = prefix('esc');
    // The only info job, as an active scheduler leaves it (it deletes the older ones).
    const connection = await BeanstalkConnection.connect({ host: server.host, port: server.port });
    try {
      await connection.use('bsworker.scheduler.active');
      for (let old = await connection.peekReady(); old !== null; old = await connection.peekReady()) await connection.delete(old.id);
    } finally {
      await connection.quit();
    }
    await rawPut(
      server.url,
      'bsworker.scheduler.active',
      JSON.stringify({ host: 'evil\u001b[2J\u202ehost', pid: 1, since: 'x', lease: '999999' }),
      { priority: 0 },
    );
    const shown = await run(['schedules', '--jobs', dir, '--url', server.url], env(p));
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(!shown.stdout.includes('\u001b') && !shown.stdout.includes('\u202e'), JSON.stringify(shown.stdout));
    assert.match(shown.stdout, /evil\\u001b\[2J\\u202ehost/);
    const json = await run(['schedules', '--jobs', dir, '--url', server.url, '--json'], env(p));
    assert.ok(!json.stdout.includes('\u001b') && !json.stdout.includes('\u202e'));
    assert.equal(JSON.parse(json.stdout).active.holding, false);
  });
});
