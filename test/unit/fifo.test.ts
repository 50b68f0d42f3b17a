/**
 * The FIFO behind the connection's reply handlers and its queue of commands waiting for the window: it
 * must hand items back in the order they went in, whatever the interleaving, and its compaction of the
 * consumed front must never drop, duplicate or reorder an item.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Fifo } from '../../src/beanstalk/fifo.js';

/** A small seeded PRNG (mulberry32), so a failure reproduces exactly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('Fifo', () => {
  it('is empty at first: length 0, and shift returns undefined (repeatedly)', () => {
    const fifo = new Fifo<number>();
    assert.equal(fifo.length, 0);
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.length, 0, 'a shift on empty does not make the length negative');
    fifo.push(1);
    assert.equal(fifo.length, 1);
    assert.equal(fifo.shift(), 1);
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.length, 0);
  });

  it('keeps falsy items (0, null, empty string, false) as items', () => {
    const fifo = new Fifo<unknown>();
    const items = [0, null, '', false, Number.NaN];
    for (const item of items) fifo.push(item);
    assert.equal(fifo.length, items.length);
    for (const item of items) assert.ok(Object.is(fifo.shift(), item));
    assert.equal(fifo.length, 0);
  });

  for (const [seed, pushBias] of [
    [1, 0.5],
    [2, 0.6],
    [3, 0.75],
  ] as const) {
    it(`matches an array model over 10,000 random push/shift steps (seed ${seed}, ${pushBias * 100}% pushes)`, () => {
      const next = random(seed);
      const fifo = new Fifo<number>();
      const model: number[] = [];
      let counter = 0;
      let maxLength = 0;
      for (let step = 0; step < 10_000; step += 1) {
        if (next() < pushBias) {
          fifo.push(counter);
          model.push(counter);
          counter += 1;
        } else {
          assert.equal(fifo.shift(), model.shift(), `step ${step}`);
        }
        assert.equal(fifo.length, model.length, `length at step ${step}`);
        maxLength = Math.max(maxLength, model.length);
      }
      // Drain what is left, in order.
      while (model.length > 0) assert.equal(fifo.shift(), model.shift());
      assert.equal(fifo.shift(), undefined);
      assert.equal(fifo.length, 0);
      if (pushBias > 0.5) assert.ok(maxLength > 1_024, `the backlog grew past the compaction threshold (${maxLength})`);
    });
  }

  it('loses and reorders nothing across compaction: push 5,000, shift 3,000, push 5,000, shift all', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 5_000; i += 1) fifo.push(i);
    assert.equal(fifo.length, 5_000);
    for (let i = 0; i < 3_000; i += 1) assert.equal(fifo.shift(), i);
    assert.equal(fifo.length, 2_000);
    for (let i = 5_000; i < 10_000; i += 1) fifo.push(i);
    assert.equal(fifo.length, 7_000);
    for (let i = 3_000; i < 10_000; i += 1) {
      assert.equal(fifo.shift(), i);
      assert.equal(fifo.length, 9_999 - i);
    }
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.length, 0);
  });

  it('stays correct when emptied right at the compaction threshold and refilled', () => {
    const fifo = new Fifo<number>();
    for (let round = 0; round < 4; round += 1) {
      const base = round * 10_000;
      // 1,024 and 2,048 hit `head >= 1024 && head * 2 >= length` exactly; the others go past it.
      const size = [1_024, 2_048, 1_025, 3_000][round] as number;
      for (let i = 0; i < size; i += 1) fifo.push(base + i);
      for (let i = 0; i < size; i += 1) assert.equal(fifo.shift(), base + i, `round ${round}, item ${i}`);
      assert.equal(fifo.length, 0);
      assert.equal(fifo.shift(), undefined);
    }
  });
});
