/**
 * The id scan's paging without a server: newest first, the bounds (limit, scan, deadline, in flight),
 * and cursors that page through every id exactly once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ScanBounds, scanIds } from '../../src/admin/scan.js';
import type { JobStats } from '../../src/beanstalk/types.js';

function stats(id: bigint, tube: string, state: string): JobStats {
  return {
    id: String(id),
    tube,
    state,
    priority: 1024,
    ageSeconds: 0,
    delaySeconds: 0,
    ttrSeconds: 60,
    timeLeftSeconds: 0,
    reserves: 0,
    timeouts: 0,
    releases: 0,
    buries: 0,
    kicks: 0,
  };
}

/** A server with ids 1..`highest`: every third id is a buried job of `t`, every other id is in `u` or gone. */
function fakeServer(highest: number): {
  fetch: (id: bigint) => Promise<JobStats | null>;
  asked: bigint[];
  inFlight: () => number;
  peak: () => number;
} {
  const asked: bigint[] = [];
  let inFlight = 0;
  let peak = 0;
  return {
    asked,
    inFlight: () => inFlight,
    peak: () => peak,
    fetch: async (id) => {
      asked.push(id);
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight -= 1;
      if (id > BigInt(highest)) return null;
      const n = Number(id);
      if (n % 3 === 0) return stats(id, 't', 'buried');
      if (n % 3 === 1) return stats(id, 'u', 'buried');
      return n % 2 === 0 ? null : stats(id, 't', 'ready');
    },
  };
}

const bounds = (over: Partial<ScanBounds> = {}): ScanBounds => ({
  limit: 10,
  scan: 5_000,
  inFlight: 16,
  deadline: Date.now() + 10_000,
  ...over,
});
const buriedInT = (job: JobStats): boolean => job.tube === 't' && job.state === 'buried';

describe('scanIds', () => {
  it('finds matches newest first and stops at the limit, with the last id read as the lowest', async () => {
    const server = fakeServer(100);
    const result = await scanIds(100n, bounds({ limit: 4 }), server.fetch, buriedInT);
    assert.deepEqual(
      result.matches.map((job) => job.id),
      ['99', '96', '93', '90'],
    );
    assert.equal(result.stoppedBy, 'limit');
    assert.equal(result.lowest, 90n);
    assert.equal(result.scanned, 11, 'ids 100 down to 90 were read');
  });

  it('pages with the lowest id as the cursor until id 1, seeing every match exactly once', async () => {
    const server = fakeServer(1_000);
    const seen: string[] = [];
    let start = 1_000n;
    let pages = 0;
    for (;;) {
      pages += 1;
      const result = await scanIds(start, bounds({ limit: 50, scan: 120 }), server.fetch, buriedInT);
      seen.push(...result.matches.map((job) => job.id));
      if (result.stoppedBy === 'end') break;
      assert.ok(result.lowest !== undefined && result.lowest > 1n);
      assert.ok(['limit', 'scan-bound'].includes(result.stoppedBy), result.stoppedBy);
      start = result.lowest - 1n;
    }
    const expected = Array.from({ length: 333 }, (_, i) => String(999 - 3 * i));
    assert.deepEqual(seen, expected, 'every buried job of t, newest first, none twice');
    assert.ok(pages >= 9, `${pages} pages: the scan bound of 120 ids held`);
  });

  it('stops at the scan bound and says so; never reads an id below the bound', async () => {
    const server = fakeServer(1_000);
    const result = await scanIds(1_000n, bounds({ limit: 1_000, scan: 30 }), server.fetch, buriedInT);
    assert.equal(result.stoppedBy, 'scan-bound');
    assert.equal(result.scanned, 30);
    assert.equal(result.lowest, 971n);
    assert.ok(
      server.asked.every((id) => id >= 971n),
      'no command for an id below the bound',
    );
    assert.equal(result.matches.length, 10);
  });

  it('keeps at most inFlight commands outstanding', async () => {
    const server = fakeServer(2_000);
    await scanIds(2_000n, bounds({ limit: 1_000, scan: 2_000, inFlight: 7 }), server.fetch, buriedInT);
    assert.equal(server.peak(), 7);
  });

  it('stops at the deadline with what it found, and a slow reply does not hold it', async () => {
    const slow = async (id: bigint): Promise<JobStats | null> => {
      if (id === 95n) await new Promise((resolve) => setTimeout(resolve, 5_000).unref());
      return stats(id, 't', 'buried');
    };
    const started = Date.now();
    const result = await scanIds(100n, bounds({ limit: 1_000, deadline: Date.now() + 100 }), slow, buriedInT);
    assert.ok(Date.now() - started < 2_000, 'it did not wait for the slow reply');
    assert.equal(result.stoppedBy, 'deadline');
    assert.deepEqual(
      result.matches.map((job) => job.id),
      ['100', '99', '98', '97', '96'],
    );
    assert.equal(result.lowest, 96n, 'the next page starts at the id that did not answer');
  });

  it('an empty server (highest id 0) is exhausted at once; a failure of a reply read is thrown', async () => {
    const none = await scanIds(0n, bounds(), async () => assert.fail('no id to read'), buriedInT);
    assert.deepEqual([none.matches.length, none.scanned, none.lowest, none.stoppedBy], [0, 0, undefined, 'end']);
    await assert.rejects(
      scanIds(
        10n,
        bounds(),
        async (id) => {
          if (id === 8n) throw new Error('connection lost');
          return null;
        },
        buriedInT,
      ),
      /connection lost/,
    );
  });
});
