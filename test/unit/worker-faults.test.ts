// The worker's fault handling that needs no server: the failure policy (pure) and the reserve loop's behaviour on DEADLINE_SOON and during a long outage (against the fake).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { DeadlineSoonError } from '../../src/beanstalk/errors.js';
import { decideFailure, type FailureFacts } from '../../src/worker/policy.js';
import { body, queue, randomTube, SUITE, setup, stopWorkers } from '../helpers/fake-server.js';

afterEach(stopWorkers);

describe('decideFailure (src/worker/policy.ts)', () => {
  const facts = (over: Partial<FailureFacts>): FailureFacts => ({
    reason: 'failed',
    unrecoverable: false,
    releases: 0,
    kicks: 0,
    retries: 0,
    backoff: { type: 'fixed', delaySeconds: 5, jitter: false },
    maxKicks: 3,
    deadLetter: false,
    autoKick: false,
    parkable: false,
    ...over,
  });

  it('releases while retries are left, with the backoff delay', () => {
    assert.deepEqual(decideFailure(facts({ retries: 2, releases: 1 })), { action: 'release', delaySeconds: 5, attempt: 2 });
    assert.deepEqual(decideFailure(facts({ retries: 2, releases: 2 })), { action: 'bury' });
  });

  it('buries below the kick bound; at the bound dead-letters, or discards without a dead-letter tube', () => {
    assert.deepEqual(decideFailure(facts({ kicks: 2 })), { action: 'bury' });
    assert.deepEqual(decideFailure(facts({ kicks: 3, deadLetter: true })), { action: 'dead-letter' });
    assert.deepEqual(decideFailure(facts({ kicks: 3 })), { action: 'discard' });
    assert.deepEqual(decideFailure(facts({ reason: 'undecodable', kicks: 3, retries: 5 })), { action: 'discard' });
    assert.deepEqual(decideFailure(facts({ reason: 'unregistered', retries: 5 })), { action: 'bury' }, 'unrunnable jobs never retry');
  });

  it('an unrecoverable failure never runs again: no retry, dead-lettered at once, never left for auto-kick', () => {
    const hopeless = { unrecoverable: true, retries: 5 };
    assert.deepEqual(decideFailure(facts({ ...hopeless, deadLetter: true })), { action: 'dead-letter' });
    assert.deepEqual(decideFailure(facts({ ...hopeless, autoKick: true })), { action: 'discard' }, 'no record can mark it');
    assert.deepEqual(
      decideFailure(facts({ ...hopeless, autoKick: true, parkable: true })),
      { action: 'bury' },
      'buried, marked so that auto-kick leaves it',
    );
    assert.deepEqual(decideFailure(facts(hopeless)), { action: 'bury' }, 'without auto-kick it waits for an operator');
  });
});

describe('Worker: the reserve loop under faults', SUITE, () => {
  it('pauses after DEADLINE_SOON instead of reserving again at once', async () => {
    const tube = randomTube();
    const { worker, fake } = setup({ tubes: [tube] });
    for (let i = 0; i < 500; i += 1) fake.reserveErrors.push(new DeadlineSoonError('reserve-with-timeout'));
    await worker.start();
    // A window, not an event: what is asserted is that nothing happens in it.
    await sleep(600);
    assert.ok(fake.calls('reserve').length <= 2, `reserves in 600 ms: ${fake.calls('reserve').length}`);
  });

  it('a long outage adds no abort listener per reconnect attempt (no MaxListenersExceededWarning)', async () => {
    const tube = randomTube();
    queue.task(tube)(function afterOutage(_kwargs: object) {});
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const { worker, fake, events } = setup({ tubes: [tube], reconnectMinMs: 1, reconnectMaxMs: 2 });
      await worker.start();
      fake.refuseConnects = 30;
      fake.dropConnections();
      await events.waitFor('worker:reconnected');
      fake.addJob(body('afterOutage', tube), { tube });
      await events.waitFor('job:deleted');
      await sleep(10);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
      [],
    );
  });

  it("redacts the worker's and the task's keys in a body logged at the kick bound", async () => {
    const tube = randomTube();
    queue.task(tube, { redact: ['cardNumber'] })(function charge(_kwargs: object) {
      throw new Error('declined');
    });
    assert.throws(() => queue.task(tube, { redact: 'cardNumber' as never })(function bad(_kwargs: object) {}), /redact/);
    const { worker, fake, events, lines } = setup({ tubes: [tube], maxKicks: 0, redact: ['password'] });
    const id = fake.addJob(body('charge', tube, { cardNumber: '4111', user: { Password: 'hunter2' }, amount: 5 }), { tube });
    await worker.start();
    await events.waitFor('job:deleted', (event) => event.jobId === id);
    const line = lines.find((entry) => entry.level === 50 && entry.jobId === id);
    const logged = JSON.parse(String(line?.body));
    assert.deepEqual(logged.kwargs, { cardNumber: '[redacted]', user: { Password: '[redacted]' }, amount: 5 });
  });
});
