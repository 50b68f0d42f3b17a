// Schedules without a server: what a declaration refuses, and the tick and catch-up decisions.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { JobQueue } from '../../src/index.js';
import { compileCron } from '../../src/scheduler/cron.js';
import { type DecisionSchedule, decideMarker, delayUntil, LATE_GRACE_MS, markerToKeep } from '../../src/scheduler/decide.js';
import { chooseServer, encodeMarker, MAX_SCHEDULE_NAME_BYTES, parseActiveInfo, parseMarker } from '../../src/scheduler/markers.js';
import { DuplicateScheduleError, findSchedule, unregisterSchedule } from '../../src/scheduler/registry.js';
import type { Marker } from '../../src/scheduler/types.js';
import { parseServerList } from '../../src/servers/server-list.js';

const queue = new JobQueue({ inline: true });
const report = queue.task('unit-schedules')(async function report(_kw: { day: string }) {});
const declared: string[] = [];
after(() => {
  for (const name of declared) unregisterSchedule(name);
});

describe('queue.schedule() declaration', () => {
  it('declares a schedule with its defaults: UTC, catchUp skip', () => {
    const schedule = queue.schedule('unit-daily', '0 3 * * *', report, { day: 'today' });
    declared.push('unit-daily');
    assert.equal(findSchedule('unit-daily'), schedule);
    assert.equal(schedule.timezone, 'UTC');
    assert.equal(schedule.catchUp, 'skip');
    assert.equal(schedule.task.tube, 'unit-schedules');
    assert.deepEqual(schedule.kwargs, { day: 'today' });
  });

  it('refuses a second schedule under the same name', () => {
    queue.schedule('unit-twice', '* * * * *', report, { day: 'a' });
    declared.push('unit-twice');
    assert.throws(() => queue.schedule('unit-twice', '* * * * *', report, { day: 'b' }), DuplicateScheduleError);
  });

  const refused: [string, () => unknown, RegExp][] = [
    ['an empty name', () => queue.schedule('', '* * * * *', report, { day: 'x' }), /name.*empty string/],
    ['a name with a space', () => queue.schedule('two words', '* * * * *', report, { day: 'x' }), /valid tube name/],
    ['a name starting with -', () => queue.schedule('-x', '* * * * *', report, { day: 'x' }), /may not start with `-`/],
    [
      'a name too long for its tube',
      () => queue.schedule('a'.repeat(MAX_SCHEDULE_NAME_BYTES + 1), '* * * * *', report, { day: 'x' }),
      /marker tube/,
    ],
    ['a cron typo', () => queue.schedule('unit-typo', '*/5 * * *x', report, { day: 'x' }), /5 fields .* or 6 with seconds/],
    ['a cron out of range', () => queue.schedule('unit-range', '61 * * * *', report, { day: 'x' }), /cron expression/],
    ['7 fields', () => queue.schedule('unit-seven', '0 0 0 1 1 * 2030', report, { day: 'x' }), /5 fields/],
    ['a cron that never fires', () => queue.schedule('unit-never', '0 0 30 2 *', report, { day: 'x' }), /never fires/],
    [
      'an unknown time zone',
      () => queue.schedule('unit-tz', '* * * * *', report, { day: 'x' }, { timezone: 'Mars/Olympus' }),
      /IANA time zone/,
    ],
    [
      'an unknown catchUp',
      () => queue.schedule('unit-catch', '* * * * *', report, { day: 'x' }, { catchUp: 'all' as 'skip' }),
      /`catchUp` to be 'skip' or 'once'/,
    ],
    [
      'an unknown option',
      () => queue.schedule('unit-opt', '* * * * *', report, { day: 'x' }, { tz: 'UTC' } as never),
      /Unknown schedule option `tz`/,
    ],
    ['a ttr of 1', () => queue.schedule('unit-ttr', '* * * * *', report, { day: 'x' }, { ttr: 1 }), /at least 2 seconds/],
    [
      'a function that is not a task',
      () => queue.schedule('unit-fn', '* * * * *', async function loose() {}, {}),
      /registered task.*`loose`/,
    ],
    ['kwargs JSON cannot carry', () => queue.schedule('unit-kw', '* * * * *', report, { day: 1n as unknown as string }), /./],
  ];
  for (const [what, declare, message] of refused) {
    it(`refuses ${what} when declared`, () => {
      assert.throws(declare, message);
    });
  }

  it('types kwargs by the task (checked by tsc, never run)', () => {
    const typed = (): void => {
      // @ts-expect-error `day` is a string
      queue.schedule('unit-typed', '* * * * *', report, { day: 1 });
      // @ts-expect-error `day` is required
      queue.schedule('unit-typed', '* * * * *', report, {});
    };
    assert.equal(typeof typed, 'function');
  });

  it('declares nothing when a declaration is refused', () => {
    assert.equal(findSchedule('unit-typo'), undefined);
    assert.equal(findSchedule('unit-tz'), undefined);
  });
});

describe('marker decisions', () => {
  const everyMinute: DecisionSchedule = { cron: '* * * * *', timezone: 'UTC', catchUp: 'skip', compiled: compileCron('* * * * *', 'UTC') };
  const once: DecisionSchedule = { ...everyMinute, catchUp: 'once' };
  const marker = (tick: string, over: Partial<Marker> = {}): Marker => ({
    schedule: 's',
    tick,
    cron: '* * * * *',
    timezone: 'UTC',
    ...over,
  });
  const at = (iso: string): Date => new Date(iso);

  it('runs an on-time tick and arms the next from the tick, not from now', () => {
    const decided = decideMarker(marker('2026-01-01T10:00:00.000Z'), everyMinute, at('2026-01-01T10:00:00.900Z'));
    assert.deepEqual(decided, { kind: 'run', tick: at('2026-01-01T10:00:00.000Z'), late: false, next: at('2026-01-01T10:01:00.000Z') });
  });

  it('runs a tick read late but before the next tick has passed (a takeover), as on time', () => {
    const decided = decideMarker(marker('2026-01-01T10:00:00.000Z'), everyMinute, at('2026-01-01T10:00:45.000Z'));
    assert.equal(decided.kind, 'run');
  });

  it('allows the whole-second delay slack past the next tick', () => {
    const now = new Date(Date.parse('2026-01-01T10:01:00.000Z') + LATE_GRACE_MS - 1);
    assert.equal(decideMarker(marker('2026-01-01T10:00:00.000Z'), everyMinute, now).kind, 'run');
  });

  it("skips a late tick with catchUp 'skip' and arms the next from now (no burst)", () => {
    const decided = decideMarker(marker('2026-01-01T10:00:00.000Z'), everyMinute, at('2026-01-01T12:30:10.000Z'));
    assert.deepEqual(decided, { kind: 'skip', tick: at('2026-01-01T10:00:00.000Z'), next: at('2026-01-01T12:31:00.000Z') });
  });

  it("runs a late tick once with catchUp 'once', keeping its own tick, and arms the next from now", () => {
    const decided = decideMarker(marker('2026-01-01T10:00:00.000Z'), once, at('2026-01-01T12:30:10.000Z'));
    assert.deepEqual(decided, { kind: 'run', tick: at('2026-01-01T10:00:00.000Z'), late: true, next: at('2026-01-01T12:31:00.000Z') });
  });

  it('drops a marker for a tick already run (a takeover left two)', () => {
    const decided = decideMarker(
      marker('2026-01-01T10:00:00.000Z'),
      everyMinute,
      at('2026-01-01T10:00:01.000Z'),
      Date.parse('2026-01-01T10:00:00.000Z'),
    );
    assert.equal(decided.kind, 'duplicate');
  });

  it('puts back a marker read before its tick (kicked by hand)', () => {
    const decided = decideMarker(marker('2026-01-01T10:05:00.000Z'), everyMinute, at('2026-01-01T10:00:00.000Z'));
    assert.deepEqual(decided, { kind: 'early', tick: at('2026-01-01T10:05:00.000Z') });
  });

  it('replaces a marker of another expression or time zone, from now', () => {
    const now = at('2026-01-01T10:00:30.000Z');
    assert.deepEqual(decideMarker(marker('2026-01-01T10:00:00.000Z', { cron: '*/5 * * * *' }), everyMinute, now), {
      kind: 'replace',
      next: at('2026-01-01T10:01:00.000Z'),
    });
    assert.equal(decideMarker(marker('2026-01-01T10:00:00.000Z', { timezone: 'Europe/Paris' }), everyMinute, now).kind, 'replace');
  });

  it('follows the time zone across DST: 02:30 Paris does not exist on 2026-03-29', () => {
    const paris = compileCron('30 2 * * *', 'Europe/Paris');
    const next = paris.nextRun(at('2026-03-28T12:00:00.000Z'));
    assert.ok(next !== null && next.toISOString() !== '2026-03-29T00:30:00.000Z', String(next?.toISOString()));
    assert.equal(
      compileCron('0 9 * * *', 'Europe/Paris').nextRun(at('2026-07-01T00:00:00.000Z'))?.toISOString(),
      '2026-07-01T07:00:00.000Z',
    );
  });

  it('computes a seconds schedule', () => {
    const seconds = compileCron('*/1 * * * * *', 'UTC');
    assert.equal(seconds.nextRun(at('2026-01-01T10:00:00.000Z'))?.toISOString(), '2026-01-01T10:00:01.000Z');
  });

  it('delays a marker until its tick in whole seconds, never before it', () => {
    assert.equal(delayUntil(at('2026-01-01T10:00:01.000Z'), at('2026-01-01T10:00:00.100Z')), 1);
    assert.equal(delayUntil(at('2026-01-01T10:00:01.000Z'), at('2026-01-01T09:59:58.500Z')), 3);
    assert.equal(delayUntil(at('2026-01-01T10:00:00.000Z'), at('2026-01-01T10:00:05.000Z')), 0);
  });

  it('keeps the latest marker of the current expression among several', () => {
    const kept = markerToKeep(
      [marker('2026-01-01T10:00:00.000Z'), marker('2026-01-01T10:01:00.000Z'), marker('2026-01-01T10:09:00.000Z', { cron: '*/9 * * * *' })],
      '* * * * *',
      'UTC',
    );
    assert.equal(kept?.tick, '2026-01-01T10:01:00.000Z');
    assert.equal(markerToKeep([marker('2026-01-01T10:00:00.000Z', { timezone: 'Asia/Tokyo' })], '* * * * *', 'UTC'), undefined);
  });
});

describe('markers and the chosen server', () => {
  it('reads back a marker it wrote, and refuses bodies that are not one', () => {
    const marker: Marker = { schedule: 's', tick: '2026-01-01T10:00:00.000Z', cron: '* * * * *', timezone: 'UTC' };
    assert.deepEqual(parseMarker(Buffer.from(encodeMarker(marker))), marker);
    for (const body of ['', 'null', '[]', '{"schedule":"s"}', '{"schedule":"s","tick":"soon","cron":"*","timezone":"UTC"}'])
      assert.equal(parseMarker(Buffer.from(body)), undefined, body);
    assert.equal(parseActiveInfo(Buffer.from('{"host":"h","pid":1,"since":"x","lease":"1 2"}')), undefined);
  });

  it('picks the first server by name, whatever order the list gives', () => {
    assert.equal(chooseServer(parseServerList('10.0.0.2:11300,10.0.0.1:11301')).name, '10.0.0.1:11301');
    assert.equal(chooseServer(parseServerList('10.0.0.1:11301,10.0.0.2:11300')).name, '10.0.0.1:11301');
  });
});
