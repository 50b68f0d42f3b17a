/**
 * Calling a task directly (`task(kw)`) runs it here and now. A task declared `(kw, ctx: TaskContext)`
 * type-checks when called with kwargs alone, so it must get a real context, as an inline put gives it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { TaskContext } from '../../src/index.js';
import { JobQueue } from '../../src/tasks/queue.js';

const tube = (): string => `pi${randomUUID().slice(0, 8)}`;

/** A logger whose lines land in `lines`. */
function capturingLogger(lines: Record<string, unknown>[]) {
  return pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
}

describe('calling a task inline', () => {
  it('gives a task that takes a context a real one: inline id, tube, name, a quiet signal, first-run counters', async () => {
    const lines: Record<string, unknown>[] = [];
    const queue = new JobQueue({ logger: capturingLogger(lines), inline: false });
    const t = tube();
    const report = queue.task(t, { ttr: 30, priority: 7 })(async function report(kw: { n: number }, ctx: TaskContext) {
      ctx.logger.info({ n: kw.n }, 'ran inline');
      await ctx.touch();
      const stats = await ctx.stats();
      return { jobId: ctx.jobId, tube: ctx.tube, name: ctx.name, aborted: ctx.signal.aborted, attempt: await ctx.attempt(), stats };
    });
    // Before: ctx was undefined and the task threw a TypeError on its first use of it.
    const first = await report({ n: 1 });
    const second = await report({ n: 2 });
    assert.match(first.jobId, /^inline-\d+$/);
    assert.notEqual(first.jobId, second.jobId, 'each run has its own id');
    assert.deepEqual(
      { ...first, jobId: undefined, stats: undefined },
      { jobId: undefined, tube: t, name: 'report', aborted: false, attempt: 1, stats: undefined },
    );
    assert.equal(first.stats.tube, t);
    assert.equal(first.stats.ttrSeconds, 30);
    assert.equal(first.stats.priority, 7);
    assert.equal(first.stats.releases, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.length, 2);
    assert.deepEqual(
      { msg: lines[0]?.msg, tube: lines[0]?.tube, task: lines[0]?.task, jobId: lines[0]?.jobId, n: lines[0]?.n },
      { msg: 'ran inline', tube: t, task: 'report', jobId: first.jobId, n: 1 },
    );
  });

  it('passes a context the caller gives on, unchanged', async () => {
    const queue = new JobQueue({ logger: pino({ level: 'silent' }), inline: false });
    const echo = queue.task(tube())(function echo(_kw: object, ctx: TaskContext) {
      return ctx;
    });
    const mine = { jobId: 'mine' } as TaskContext;
    assert.equal(echo({}, mine), mine);
  });

  it('gives a decorated static method a context too, with this = the class', async () => {
    const queue = new JobQueue({ logger: pino({ level: 'silent' }), inline: false });
    const t = tube();
    class Reports {
      static label = 'reports';
      @queue.task(t)
      static build(_kw: object, ctx: TaskContext): string {
        // biome-ignore lint/complexity/noThisInStatic: the point is that `this` is the class.
        return `${this.label}:${ctx.name}:${ctx.jobId.startsWith('inline-')}`;
      }
    }
    assert.equal(Reports.build({}, undefined as unknown as TaskContext), 'reports:build:true');
  });
});
