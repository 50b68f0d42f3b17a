/**
 * The rate limiter's window (src/worker/rate-limit.ts), driven by a fake clock: no timers, no sleeps;
 * and the validation of `rateLimit` in queue.task (src/tasks/put-options.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { validateTaskOptions } from '../../src/tasks/put-options.js';
import type { TaskOptions } from '../../src/tasks/types.js';
import { SlidingWindow } from '../../src/worker/rate-limit.js';

/** Takes a start at each time in `times`; returns the waits (0: taken). */
function takeAll(window: SlidingWindow, times: readonly number[]): number[] {
  return times.map((now) => window.take(now));
}

describe('rate limit: SlidingWindow', () => {
  it('allows max starts, then says how long until the oldest leaves the window', () => {
    const window = new SlidingWindow(3, 1_000);
    assert.deepEqual(takeAll(window, [0, 10, 20]), [0, 0, 0]);
    assert.equal(window.take(30), 970);
    // Refused starts take nothing: asking again later gives a shorter wait.
    assert.equal(window.take(500), 500);
    assert.equal(window.waitMs(999), 1);
    assert.equal(window.take(1_000), 0);
    // The next one frees when the second start (10) is a window old.
    assert.equal(window.take(1_000), 10);
    assert.equal(window.take(1_010), 0);
  });

  it('never lets any window hold more than max starts, unlike a bucket that refills during a burst', () => {
    const max = 5;
    const windowMs = 1_000;
    const window = new SlidingWindow(max, windowMs);
    const starts: number[] = [];
    // A caller that starts whenever allowed, asking every 7 ms for 10 s.
    for (let now = 0; now < 10_000; now += 7) if (window.take(now) === 0) starts.push(now);
    for (let i = max; i < starts.length; i += 1) {
      assert.ok((starts[i] as number) - (starts[i - max] as number) >= windowMs, `starts ${i - max} and ${i} within one window`);
    }
    // And it is not stingier than it must be: 5 per second over 10 s.
    assert.ok(starts.length >= 49, `only ${starts.length} starts`);
  });

  it('handles max 1 and fractional windows', () => {
    const window = new SlidingWindow(1, 250);
    assert.deepEqual(takeAll(window, [0, 100, 250, 499, 500]), [0, 150, 0, 1, 0]);
  });

  it('waitMs does not take', () => {
    const window = new SlidingWindow(1, 1_000);
    assert.equal(window.waitMs(0), 0);
    assert.equal(window.waitMs(0), 0);
    assert.equal(window.take(0), 0);
    assert.equal(window.waitMs(400), 600);
  });
});

describe('rate limit: validation', () => {
  const check = (rateLimit: unknown): void => validateTaskOptions({ rateLimit } as TaskOptions);

  it('accepts whole max and positive (fractional) perSeconds', () => {
    check({ max: 10, perSeconds: 1 });
    check({ max: 1, perSeconds: 0.5 });
    check({ max: 1_000_000, perSeconds: 3600 });
  });

  it('refuses a bad max, naming the option and the value', () => {
    assert.throws(() => check({ max: 0, perSeconds: 1 }), {
      name: 'RangeError',
      message: 'Expected `rateLimit.max` to be an integer from 1 to 1000000, got `0` (number)',
    });
    assert.throws(() => check({ max: 1.5, perSeconds: 1 }), RangeError);
    assert.throws(() => check({ max: '10', perSeconds: 1 }), TypeError);
    assert.throws(() => check({ perSeconds: 1 }), TypeError);
  });

  it('refuses a bad perSeconds', () => {
    for (const perSeconds of [0, -1, 0.0001, Number.NaN, Number.POSITIVE_INFINITY, 3_000_000]) {
      assert.throws(() => check({ max: 1, perSeconds }), {
        name: 'RangeError',
        message: /^Expected `rateLimit.perSeconds` to be a number of seconds from 0.001 to 2147483/,
      });
    }
    assert.throws(() => check({ max: 1, perSeconds: '1' }), { name: 'TypeError', message: /got string$/ });
    assert.throws(() => check({ max: 1 }), { name: 'TypeError', message: /got undefined$/ });
  });

  it('refuses unknown keys and non-objects in the existing style', () => {
    assert.throws(() => check({ max: 1, perSeconds: 1, burst: 2 }), {
      name: 'TypeError',
      message: 'Unknown option `rateLimit.burst`; expected `max`, `perSeconds`',
    });
    assert.throws(() => check(null), { name: 'TypeError', message: 'Expected `rateLimit` to be an object, got null' });
    assert.throws(() => check(5), TypeError);
  });
});
