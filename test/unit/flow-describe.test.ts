/**
 * A job's flow as the API, the dashboard and the terminal show it: read with the worker's own reader,
 * never throwing on a hostile `meta`, never showing the reply token, and naming (not spelling out) the
 * links still to run in lists.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { describeJob } from '../../src/admin/describe.js';
import type { JobStats } from '../../src/beanstalk/types.js';
import { describeFlow, displayMeta, LISTED_LINKS, summariseFlow } from '../../src/flows/describe.js';

const link = (func_name: string, tube = 't', kwargs: Record<string, unknown> = { secret: 's' }) => ({ func_name, tube, kwargs });

describe('describeFlow', () => {
  it('is null for a meta without a flow, and for a meta that is not an object', () => {
    assert.equal(describeFlow(undefined), null);
    assert.equal(describeFlow({}), null);
    assert.equal(describeFlow({ failures: [] }), null);
    assert.equal(describeFlow('chain'), null);
    assert.equal(describeFlow([{ chain: {} }]), null);
    assert.equal(describeFlow(null), null);
  });

  it('says which link of a chain a job is, and names the links still to run without their kwargs in a list', () => {
    const flow = describeFlow({ chain: { index: 1, of: 4, next: [link('charge', 'pay'), link('notify', 'mail')] } });
    assert.ok(flow);
    assert.deepEqual(flow.chain, {
      position: 2,
      of: 4,
      nextCount: 2,
      next: [
        { func_name: 'charge', tube: 'pay' },
        { func_name: 'notify', tube: 'mail' },
      ],
    });
    assert.equal(flow.summary, 'link 2 of 4, then charge, notify');
    assert.equal(flow.malformed, null);
    assert.doesNotMatch(JSON.stringify(flow), /secret/);
  });

  it('gives every link with its kwargs and pipe in the detail view', () => {
    const flow = describeFlow({ chain: { index: 0, of: 2, next: [{ ...link('b'), pipe: 'input' }] } }, { detail: true });
    assert.deepEqual(flow?.chain?.next, [{ func_name: 'b', tube: 't', kwargs: { secret: 's' }, pipe: 'input' }]);
  });

  it('lists at most LISTED_LINKS links in a list and counts them all', () => {
    const next = Array.from({ length: 50 }, (_, i) => link(`step${i}`));
    const flow = describeFlow({ chain: { index: 0, of: 51, next } });
    assert.equal(flow?.chain?.next.length, LISTED_LINKS);
    assert.equal(flow?.chain?.nextCount, 50);
    assert.equal(flow?.summary, 'link 1 of 51, then step0, step1, step2 and 47 more');
    assert.equal(describeFlow({ chain: { index: 0, of: 51, next } }, { detail: true })?.chain?.next.length, 50);
  });

  it('says the last link is the last', () => {
    assert.equal(describeFlow({ chain: { index: 2, of: 3, next: [] } })?.summary, 'link 3 of 3, the last');
  });

  it('describes a group member, a chord and a reply without its token', () => {
    const member = describeFlow({ group: { tube: 'g.1', barrier: '7', callback: '9' }, reply: { tube: 'r.1', token: 'tok-123' } });
    assert.deepEqual(member?.group, { tube: 'g.1', barrier: '7', callback: '9' });
    assert.equal(member?.reply, true);
    assert.equal(member?.summary, 'member of group g.1, callback job 9; a caller waits for its result');
    assert.doesNotMatch(JSON.stringify(member), /tok-123|r\.1/);
    assert.equal(describeFlow({ group: { tube: 'g.1', barrier: '7' } })?.group?.callback, null);
    const chord = describeFlow({ chord: { tube: 'g.1' } });
    assert.deepEqual(chord?.chord, { tube: 'g.1', membersLeft: null });
    assert.equal(chord?.summary, 'callback of group g.1');
    assert.equal(
      summariseFlow({ chain: null, group: null, chord: { tube: 'g', membersLeft: 1 }, reply: false }),
      'callback of group g, 1 member left',
    );
  });

  it('shows a malformed flow as malformed, never throws', () => {
    const cases: [unknown, RegExp][] = [
      [{ chain: null }, /meta\.chain/],
      [{ chain: { index: 0, of: 1, next: 'x' } }, /next/],
      [{ chain: { index: -1, of: 1, next: [] } }, /index/],
      [{ chain: { index: 0, of: 1, next: [link('b')] } }, /of/],
      [{ chain: { index: 0, of: 2, next: [{ func_name: '', tube: 't', kwargs: {} }] } }, /func_name/],
      [{ chain: { index: 0, of: 2, next: [{ func_name: 'b', tube: 'bad tube', kwargs: {} }] } }, /tube/],
      [{ chain: { index: 0, of: 2, next: [{ func_name: 'b', tube: 't', kwargs: [] }] } }, /kwargs/],
      [{ group: { tube: 'g', barrier: 'x1' } }, /barrier/],
      [{ group: { tube: 'g', barrier: '1', callback: 5 } }, /callback/],
      [{ chord: 'g' }, /chord/],
      [{ reply: { tube: 'r', token: '<script>' } }, /token/],
    ];
    for (const [meta, reason] of cases) {
      const flow = describeFlow(meta);
      assert.ok(flow, JSON.stringify(meta));
      assert.match(flow.malformed ?? '', reason, JSON.stringify(meta));
      assert.match(flow.summary, /^malformed flow: /);
      assert.equal(flow.chain, null);
      assert.equal(flow.reply, false);
    }
    // A getter that throws (no JSON body makes one, but the reader must not be the one to throw).
    const hostile = {
      get chain(): unknown {
        throw new Error('boom');
      },
    };
    assert.equal(describeFlow(hostile)?.malformed, 'boom');
  });
});

describe('displayMeta', () => {
  it('redacts the reply token and drops the links of a chain in lists only', () => {
    const meta = { reply: { tube: 'r', token: 'tok' }, chain: { index: 0, of: 2, next: [link('b')] }, failures: [] };
    assert.deepEqual(displayMeta(meta), { reply: { tube: 'r', token: '[redacted]' }, chain: { index: 0, of: 2 }, failures: [] });
    assert.deepEqual(displayMeta(meta, { detail: true }), { ...meta, reply: { tube: 'r', token: '[redacted]' } });
    assert.equal(meta.reply.token, 'tok', 'the original is not changed');
    const plain = { failures: [] };
    assert.equal(displayMeta(plain), plain);
    assert.equal(displayMeta('x'), 'x');
  });
});

describe('describeJob', () => {
  const stats: JobStats = {
    id: '5',
    tube: 'pay',
    state: 'buried',
    priority: 1024,
    ageSeconds: 1,
    delaySeconds: 0,
    ttrSeconds: 60,
    timeLeftSeconds: 0,
    reserves: 1,
    timeouts: 0,
    releases: 0,
    buries: 1,
    kicks: 0,
  };

  it('adds the flow and hides the token in envelope.meta', () => {
    const body = Buffer.from(
      JSON.stringify({
        func_name: 'a',
        tube: 'pay',
        kwargs: {},
        meta: { chain: { index: 0, of: 2, next: [link('b')] }, reply: { tube: 'r', token: 'tok' } },
      }),
    );
    const listed = describeJob('s', '5', stats, body);
    assert.equal(listed.flow?.summary, 'link 1 of 2, then b; a caller waits for its result');
    assert.doesNotMatch(JSON.stringify(listed), /"tok"|secret/);
    const detail = describeJob('s', '5', stats, body, { detail: true });
    assert.match(JSON.stringify(detail), /secret/);
    assert.doesNotMatch(JSON.stringify(detail), /"tok"/);
  });

  it('has no flow for a body that is not an envelope', () => {
    assert.equal(describeJob('s', '5', stats, Buffer.from('{"meta":{"chain":1}}')).flow, null);
  });
});
