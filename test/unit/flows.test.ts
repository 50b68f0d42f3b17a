/**
 * The worker's side of chains, groups and results, without a server: what it reads from an untrusted
 * meta, and the commands it sends after a success, in order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotFoundError } from '../../src/beanstalk/errors.js';
import type { PutParams, TubeStats } from '../../src/beanstalk/types.js';
import { advanceFlow, FlowStepError, sendReply } from '../../src/flows/advance.js';
import { FlowMetaError, readFlow } from '../../src/flows/meta.js';
import { ProgressSender } from '../../src/flows/progress.js';
import { UnexpectedBeanstalk } from '../helpers/fake-beanstalk.js';

/** A tube's counts with `jobs` ready and `watching` watchers. */
function tubeStats(name: string, jobs: number, watching: number): TubeStats {
  return {
    name,
    urgent: 0,
    ready: jobs,
    reserved: 0,
    delayed: 0,
    buried: 0,
    total: jobs,
    using: 0,
    watching,
    waiting: 0,
    deletes: 0,
    pauseSeconds: 0,
    pauseTimeLeftSeconds: 0,
  };
}

/** Records the commands a flow step sends, answering from `tubes` (jobs and watchers per tube). */
class FlowFake extends UnexpectedBeanstalk {
  readonly sent: string[] = [];
  readonly bodies: string[] = [];
  kickAnswer: 'ok' | 'not-found' = 'ok';
  constructor(readonly tubes: Record<string, { jobs: number; watching: number }> = {}) {
    super('flow fake');
  }
  override async putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
    this.sent.push(`put ${tube} pri=${params.priority} delay=${params.delaySeconds} ttr=${params.ttrSeconds}`);
    this.bodies.push(body.toString('utf8'));
    return '99';
  }
  override async delete(id: string): Promise<void> {
    this.sent.push(`delete ${id}`);
    if (id === 'gone') throw new NotFoundError('delete', id);
  }
  override async statsTube(tube: string): Promise<TubeStats | null> {
    this.sent.push(`stats-tube ${tube}`);
    const known = this.tubes[tube];
    return known === undefined ? null : tubeStats(tube, known.jobs, known.watching);
  }
  override async kickJob(id: string): Promise<void> {
    this.sent.push(`kick-job ${id}`);
    if (this.kickAnswer === 'not-found') throw new NotFoundError('kick-job', id);
  }
}

const link = { func_name: 'next', tube: 'second', kwargs: { a: 1 } };

describe('readFlow', () => {
  it('answers undefined for a meta without flow members (the common case)', () => {
    assert.equal(readFlow({ failures: [], carried: {} }), undefined);
  });

  it('reads every member in its shape', () => {
    const flow = readFlow({
      reply: { tube: 'bsworker.reply.abc', token: '7' },
      chain: { index: 0, of: 2, next: [{ ...link, pipe: 'prev', priority: 5, delay: 0, ttr: 30 }] },
      group: { tube: 'bsworker.group.x', barrier: '12', callback: '11' },
    });
    assert.ok(flow !== undefined && !(flow instanceof FlowMetaError));
    assert.deepEqual(flow.reply, { tube: 'bsworker.reply.abc', token: '7' });
    assert.equal(flow.chain?.next[0]?.pipe, 'prev');
    assert.deepEqual(flow.group, { tube: 'bsworker.group.x', barrier: '12', callback: '11' });
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['a reply that is not an object', { reply: 'x' }, /meta\.reply/],
    ['a reply tube with a newline (wire injection)', { reply: { tube: 'a\r\nput 0 0 1 1', token: '1' } }, /meta\.reply\.tube/],
    ['a token with spaces', { reply: { tube: 't', token: 'a b' } }, /token/],
    ['a chain whose next is not an array', { chain: { index: 0, of: 1, next: {} } }, /next/],
    ['a chain whose of is too small', { chain: { index: 1, of: 1, next: [link] } }, /of/],
    ['a negative index', { chain: { index: -1, of: 2, next: [link] } }, /index/],
    ['a link without func_name', { chain: { index: 0, of: 2, next: [{ tube: 't', kwargs: {} }] } }, /func_name/],
    ['a link with kwargs as an array', { chain: { index: 0, of: 2, next: [{ ...link, kwargs: [] }] } }, /kwargs/],
    ['a link piping into __proto__', { chain: { index: 0, of: 2, next: [{ ...link, pipe: '__proto__' }] } }, /pipe/],
    ['a link with a TTR of 0', { chain: { index: 0, of: 2, next: [{ ...link, ttr: 0 }] } }, /ttr/],
    ['a group barrier that is not an id', { group: { tube: 't', barrier: '12 13' } }, /barrier/],
    ['a chord without a tube', { chord: {} }, /meta\.chord\.tube/],
    ['a chord collecting zero members', { chord: { tube: 't', results: { tube: 't.results', members: 0, pipe: 'r' } } }, /members/],
    ['a member collecting results without its index', { group: { tube: 't', barrier: '1', results: 't.results' } }, /index/],
  ];
  for (const [what, meta, mentions] of bad) {
    it(`refuses ${what}, naming the member`, () => {
      const flow = readFlow(meta);
      assert.ok(flow instanceof FlowMetaError, `expected a FlowMetaError, got ${JSON.stringify(flow)}`);
      assert.match(flow.message, mentions);
    });
  }

  it('refuses a chain longer than 1,000 links', () => {
    const next = Array.from({ length: 1_001 }, () => link);
    assert.ok(readFlow({ chain: { index: 0, of: 1_002, next } }) instanceof FlowMetaError);
  });
});

describe('advanceFlow', () => {
  it('puts the next link with the previous value piped in, its place and the reply carried on, and sends no reply yet', async () => {
    const fake = new FlowFake({ 'bsworker.reply.r': { jobs: 0, watching: 1 } });
    const reply = { tube: 'bsworker.reply.r', token: '3' };
    const next = [
      { ...link, pipe: 'prev', priority: 7, delay: 2, ttr: 30 },
      { func_name: 'last', tube: 'third', kwargs: {} },
    ];
    await advanceFlow(fake, { chain: { index: 0, of: 3, next }, reply }, { n: 41 });
    assert.deepEqual(fake.sent, ['put second pri=7 delay=2 ttr=30']);
    assert.deepEqual(JSON.parse(fake.bodies[0] as string), {
      func_name: 'next',
      tube: 'second',
      kwargs: { a: 1, prev: { n: 41 } },
      meta: { chain: { index: 1, of: 3, next: [{ func_name: 'last', tube: 'third', kwargs: {} }] }, reply },
    });
  });

  it('fails with FlowStepError when the piped value is missing or cannot be carried', async () => {
    const fake = new FlowFake();
    const chain = { index: 0, of: 2, next: [{ ...link, pipe: 'prev' }] };
    await assert.rejects(advanceFlow(fake, { chain }, undefined), FlowStepError);
    await assert.rejects(
      advanceFlow(fake, { chain }, 10n),
      (error: unknown) => error instanceof FlowStepError && /prev/.test(error.message),
    );
    assert.deepEqual(fake.sent, []);
  });

  it('deletes the barrier job, then kicks the callback only when the barrier is empty', async () => {
    const busy = new FlowFake({ 'bsworker.group.g': { jobs: 2, watching: 0 } });
    await advanceFlow(busy, { group: { tube: 'bsworker.group.g', barrier: '5', callback: '4' } }, undefined);
    assert.deepEqual(busy.sent, ['delete 5', 'stats-tube bsworker.group.g']);

    // The tube is gone once its last job is deleted: that counts as empty.
    const last = new FlowFake({});
    await advanceFlow(last, { group: { tube: 'bsworker.group.g', barrier: '6', callback: '4' } }, undefined);
    assert.deepEqual(last.sent, ['delete 6', 'stats-tube bsworker.group.g', 'kick-job 4']);
  });

  it('takes a barrier job already gone and a callback already kicked as done (a member that runs twice)', async () => {
    const again = new FlowFake({});
    again.kickAnswer = 'not-found';
    await advanceFlow(again, { group: { tube: 'bsworker.group.g', barrier: 'gone', callback: '4' } }, undefined);
    assert.deepEqual(again.sent, ['delete gone', 'stats-tube bsworker.group.g', 'kick-job 4']);
  });

  it('replies with the value to a watched reply tube, urgent, and not at all to an unwatched one', async () => {
    const reply = { tube: 'bsworker.reply.r', token: '9' };
    const watched = new FlowFake({ 'bsworker.reply.r': { jobs: 0, watching: 1 } });
    await advanceFlow(watched, { reply }, { ok: 1 });
    assert.deepEqual(watched.sent, ['stats-tube bsworker.reply.r', 'put bsworker.reply.r pri=0 delay=0 ttr=60']);
    assert.deepEqual(JSON.parse(watched.bodies[0] as string), { token: '9', ok: true, value: { ok: 1 } });

    const gone = new FlowFake({ 'bsworker.reply.r': { jobs: 0, watching: 0 } });
    await advanceFlow(gone, { reply }, 1);
    assert.deepEqual(gone.sent, ['stats-tube bsworker.reply.r']);
  });
});

describe('sendReply', () => {
  const reply = { tube: 'bsworker.reply.r', token: '1' };

  it('replaces a value JSON cannot carry, or one past max-job-size, with an error reply', async () => {
    const fake = new FlowFake({ 'bsworker.reply.r': { jobs: 0, watching: 1 } });
    assert.equal(await sendReply(fake, reply, { ok: true, value: new Map() }), 'sent');
    assert.equal(JSON.parse(fake.bodies[0] as string).error.name, 'ResultEncodingError');
    assert.equal(await sendReply(fake, reply, { ok: true, value: 'x'.repeat(70_000) }), 'too-big');
    assert.equal(JSON.parse(fake.bodies[1] as string).error.name, 'ResultTooBigError');
  });

  it('drops a progress value that cannot go, without an error reply', async () => {
    const fake = new FlowFake({ 'bsworker.reply.r': { jobs: 0, watching: 1 } });
    assert.equal(await sendReply(fake, reply, { progress: 1n }), 'refused');
    assert.deepEqual(fake.bodies, []);
  });
});

describe('ProgressSender', () => {
  it('keeps one put in flight and sends only the newest of the reports made meanwhile', async () => {
    const puts: unknown[] = [];
    let release: (() => void) | undefined;
    class Slow extends FlowFake {
      override async putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
        puts.push(JSON.parse(body.toString('utf8')).progress);
        await new Promise<void>((resolve) => (release = resolve));
        return super.putInTube(tube, body, params);
      }
    }
    const fake = new Slow({ 'bsworker.reply.r': { jobs: 0, watching: 1 } });
    const sender = new ProgressSender(fake, { tube: 'bsworker.reply.r', token: '1' }, () => {
      throw new Error('nothing to log');
    });
    sender.report(1);
    await new Promise((resolve) => setImmediate(resolve));
    for (let value = 2; value <= 50; value += 1) sender.report(value);
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    release?.();
    await sender.flush();
    assert.deepEqual(puts, [1, 50]);
    // After flush (the result goes next), later reports are dropped.
    sender.report(51);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(puts, [1, 50]);
  });
});
