/**
 * Workers against a real beanstalkd, for integration tests: start one with every event recorded and a
 * captured log, stop it after the test, and poll states only visible from outside with a bound.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { JobQueue } from '../../src/tasks/queue.js';
import type { WorkerEvents } from '../../src/worker/events.js';
import type { WorkerOptions } from '../../src/worker/options.js';
import { Worker } from '../../src/worker/worker.js';
import { EventRecorder, LogCapture } from './events.js';

/** A fresh tube name, so tests on one server never see each other's jobs. */
export const freshTube = (name = 't'): string => `${name}-${randomUUID().slice(0, 8)}`;

type EventName = keyof WorkerEvents & string;
const EVENTS: readonly EventName[] = [
  'job:reserved',
  'job:completed',
  'job:failed',
  'job:released',
  'job:buried',
  'job:deleted',
  'job:overrun',
  'worker:error',
  'worker:reconnected',
  'worker:stopped',
];

/** Every event payload, loosely: the recorder keeps them all in one list. */
// biome-ignore lint/suspicious/noExplicitAny: payloads differ per event; tests read the fields they need.
export type AnyEvent = any;
/** The recorder {@link startWorker} returns. */
export type Recorder = EventRecorder<AnyEvent, EventName>;

/** Registers tasks; inline, so it never connects. */
export const registry = new JobQueue({ inline: true, logger: pino({ level: 'silent' }) });

/**
 * Starts a worker that the test's `after` stops (forced, so a failed test cannot hold the cleanup for
 * the grace period), with every event recorded from the start and its log lines captured.
 */
export async function startWorker(t: TestContext, options: WorkerOptions): Promise<{ worker: Worker; events: Recorder; logs: LogCapture }> {
  const logs = new LogCapture();
  const worker = new Worker({ logger: pino({ level: 'debug' }, logs.stream), ...options });
  const events: Recorder = new EventRecorder<AnyEvent, EventName>(worker, EVENTS);
  t.after(() => worker.stop({ force: true }));
  await worker.start();
  return { worker, events, logs };
}

/** The payloads of `name` events for `jobId`, in order. */
export const eventsOf = (events: Recorder, name: EventName, jobId: string): AnyEvent[] =>
  events.events.filter((e) => e.name === name && e.payload.jobId === jobId).map((e) => e.payload);

/**
 * Polls `check` until `accept` holds, for states only visible from outside (a job on the server, a log
 * line). Rejects after `ms` with `what` and the last value seen.
 */
export async function until<T>(check: () => Promise<T> | T, accept: (value: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = await check();
    if (accept(value)) return value;
    if (performance.now() >= deadline) throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(value)})`);
    await sleep(20);
  }
}

/** A promise with its resolver outside: a gate the test opens, or a signal a task gives. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** `promise`, or a rejection naming `what` after `ms`: no wait in a test is unbounded. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
