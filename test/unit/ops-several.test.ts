// The pure parts of several servers on the operating side: how a bound is shared between servers, the
// `--url` list and job-id parsers, and the exit code of output that misses a server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { allot } from '../../src/admin/spread.js';
import { EXIT, exitCodeFor, PartialError } from '../../src/cli/errors.js';
import { endIfPartial, parseJobRef, parseUrlList } from '../../src/cli/ops/common.js';

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
