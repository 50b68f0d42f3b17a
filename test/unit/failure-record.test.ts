import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findTopLevelMember } from '../../src/failures/json-members.js';
import { type FailureEntry, readFailureHistory, requeueBody, withFailure } from '../../src/failures/record.js';
import { deadLetterBody } from '../../src/worker/dead-letter.js';

const entry = (overrides: Partial<FailureEntry> = {}): FailureEntry => ({
  reason: 'failed',
  name: 'Error',
  message: 'boom',
  stack: 'Error: boom\n    at task (jobs/a.ts:1:1)',
  attempt: 1,
  kicks: 0,
  worker: { host: 'h', pid: 1 },
  server: '127.0.0.1:11300',
  job_id: '7',
  tube: 't',
  at: '2026-12-02T00:00:00.000Z',
  ...overrides,
});
const carried = { from: '7', reserves: 1, releases: 0, buries: 0, kicks: 0, timeouts: 0 };

describe('findTopLevelMember', () => {
  it('finds a member among nested objects, arrays and strings holding braces', () => {
    const text = '{"a": {"meta": 1}, "s": "}\\"{", "meta" : {"x": [1, {"y": "]"}]} , "z": 2}';
    const span = findTopLevelMember(text, 'meta');
    assert.ok(span !== null && span !== 'absent');
    assert.equal(text.slice(span.start, span.end), '{"x": [1, {"y": "]"}]}');
  });
  it('says absent, and refuses duplicates and non-objects', () => {
    assert.equal(findTopLevelMember('{"a":1}', 'meta'), 'absent');
    assert.equal(findTopLevelMember('{"meta":1,"meta":2}', 'meta'), null);
    assert.equal(findTopLevelMember('[1]', 'meta'), null);
    assert.equal(findTopLevelMember('not json', 'meta'), null);
  });
});

describe('withFailure', () => {
  it('adds meta to an envelope and keeps every other byte, numbers JavaScript cannot hold included', () => {
    const original = '{"func_name": "a", "kwargs": {"big": 12345678901234567890, "f": 1.0, "e": "\\u00e9"}}';
    const body = withFailure(Buffer.from(original), entry(), carried, 65_535);
    assert.ok(body);
    const text = body.toString('utf8');
    assert.ok(text.startsWith('{"func_name": "a", "kwargs": {"big": 12345678901234567890, "f": 1.0, "e": "\\u00e9"},"meta":'));
    const history = readFailureHistory(body);
    assert.equal(history?.failures.length, 1);
    assert.equal(history?.failures[0]?.message, 'boom');
    assert.deepEqual(history?.carried, carried);
  });
  it('appends to an existing history, keeps other meta fields, and replaces carried', () => {
    const first = withFailure(Buffer.from('{"func_name":"a","kwargs":{},"meta":{"trace":"x"}}'), entry(), carried, 65_535);
    assert.ok(first);
    const second = withFailure(first, entry({ message: 'again', attempt: 2 }), { ...carried, from: '9', kicks: 1 }, 65_535);
    assert.ok(second);
    const parsed = JSON.parse(second.toString('utf8'));
    assert.equal(parsed.meta.trace, 'x');
    assert.deepEqual(
      parsed.meta.failures.map((f: FailureEntry) => f.message),
      ['boom', 'again'],
    );
    assert.equal(parsed.meta.carried.from, '9');
  });
  it('keeps the first entry and the latest ones past the cap', () => {
    let body: Buffer = Buffer.from('{"func_name":"a","kwargs":{}}');
    for (let n = 1; n <= 15; n += 1) body = withFailure(body, entry({ message: `m${n}`, attempt: n }), carried, 65_535) as Buffer;
    const messages = readFailureHistory(body)?.failures.map((f) => f.message);
    assert.deepEqual(messages, ['m1', 'm7', 'm8', 'm9', 'm10', 'm11', 'm12', 'm13', 'm14', 'm15']);
  });
  it('fits max-job-size by dropping stacks, then older entries, then shortening the message', () => {
    const big = 'x'.repeat(3_000);
    let body: Buffer = Buffer.from(`{"func_name":"a","kwargs":{"pad":"${'p'.repeat(1_000)}"}}`);
    for (let n = 1; n <= 5; n += 1) body = withFailure(body, entry({ message: big, stack: big }), carried, 65_535) as Buffer;
    const fitted = withFailure(body, entry({ message: big, stack: big }), carried, 5_000);
    assert.ok(fitted);
    assert.ok(fitted.length <= 5_000);
    const history = readFailureHistory(fitted);
    assert.ok(history && history.failures.length >= 1);
    assert.equal(history.failures.at(-1)?.stack, undefined);
    assert.equal(withFailure(Buffer.from(`{"func_name":"a","kwargs":{"pad":"${'p'.repeat(6_000)}"}}`), entry(), carried, 5_000), null);
  });
  it('gives null for bodies the record cannot travel in', () => {
    for (const raw of ['not json', '[1,2]', '"s"', '{"meta":[]}', '{"meta":1,"meta":{}}']) {
      assert.equal(withFailure(Buffer.from(raw), entry(), carried, 65_535), null, raw);
    }
    assert.equal(withFailure(Buffer.from([0xff, 0xfe]), entry(), carried, 65_535), null);
  });
  it('works on an empty object', () => {
    const body = withFailure(Buffer.from('{ }'), entry(), carried, 65_535);
    assert.ok(body);
    assert.equal(JSON.parse(body.toString()).meta.failures.length, 1);
  });
});

describe('readFailureHistory', () => {
  it('is undefined without a history and ignores malformed entries', () => {
    assert.equal(readFailureHistory(Buffer.from('{"func_name":"a","kwargs":{}}')), undefined);
    assert.equal(readFailureHistory(Buffer.from('nope')), undefined);
    const history = readFailureHistory(Buffer.from('{"meta":{"failures":[1,"x",{"message":5,"name":"E"}]}}'));
    assert.equal(history?.failures.length, 1);
    assert.equal(history?.failures[0]?.message, '');
    assert.equal(history?.failures[0]?.name, 'E');
  });
});

describe('requeueBody', () => {
  it('gives back the original with the dead-letter failure appended and the counters dropped', () => {
    const buried = withFailure(Buffer.from('{"func_name":"a","tube":"t","kwargs":{"n":1}}'), entry(), carried, 65_535) as Buffer;
    const letter = deadLetterBody(
      buried,
      { error: new Error('final'), tube: 't', jobId: '9', attempts: 3, kicks: 2 },
      { maxBytes: 65_535 },
    );
    assert.ok(letter);
    const back = requeueBody(letter);
    assert.ok(back);
    const parsed = JSON.parse(back.toString('utf8'));
    assert.deepEqual(parsed.kwargs, { n: 1 });
    assert.equal(parsed.meta.dead_letter, undefined);
    assert.equal(parsed.meta.carried, undefined);
    assert.deepEqual(
      parsed.meta.failures.map((f: FailureEntry) => [f.reason, f.message]),
      [
        ['failed', 'boom'],
        ['dead-lettered', 'final'],
      ],
    );
  });
  it('gives back bytes that are not an object as they were, and undefined for a non-letter', () => {
    const raw = Buffer.from([0xff, 0x00, 0x01]);
    const letter = deadLetterBody(raw, { error: new Error('x'), tube: 't', jobId: '1', attempts: 1, kicks: 0 }, { maxBytes: 65_535 });
    assert.deepEqual(requeueBody(letter as Buffer), raw);
    assert.equal(requeueBody(Buffer.from('{"func_name":"a","kwargs":{}}')), undefined);
  });
});
