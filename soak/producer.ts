/**
 * One soak producer, run as a child process: puts jobs at a steady rate through the real JobQueue (the
 * built package) and writes one record per put to its own file: accepted, rejected (the error says the
 * job was not stored) or unknown (the error says it may have been). SIGTERM stops it: no new puts, the
 * puts in flight get a bounded wait, any still unsettled are written as unknown ("pending").
 */
import { createWriteStream } from 'node:fs';
import { queue } from './jobs/queue.js';
import { soakFast, soakFlaky, soakPoison } from './jobs/tasks.js';
import { ENV, ID_BLOCK, kindOf, type PutRecord, type SoakKwargs } from './shared.js';

/** Tick length: puts are spread over 50 ticks a second rather than sent in one burst. */
const TICK_MS = 20;
/** More unanswered puts than this (a stopped server) pauses the producer instead of piling up memory. */
const MAX_IN_FLIGHT = 4_000;
/** After a pause, catch up at most this much: the soak wants a steady load, not a burst. */
const MAX_BACKLOG_SECONDS = 1;
/** How long the puts in flight may take to settle after SIGTERM. */
const SETTLE_MS = 20_000;

const PUTTERS = { fast: soakFast, flaky: soakFlaky, poison: soakPoison } as const;

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`soak producer: ${name} is not set`);
  return value;
}

const index = Number(required(ENV.producerIndex));
const rate = Number(required(ENV.producerRate));
const seed = Number(required(ENV.seed));
const out = createWriteStream(required(ENV.producerOut), { flags: 'a' });

/**
 * Only a PutOutcomeUnknownError means "the put may or may not have been stored": the producer writes
 * it for a put that was written and lost its reply. Any other error, a plain ConnectionError included
 * (the put was never written, and its retries ran out), says the job was not stored.
 */
function isUnknownOutcome(error: unknown): boolean {
  return error instanceof Error && (error.name === 'PutOutcomeUnknownError' || (error as { code?: unknown }).code === 'OUTCOME_UNKNOWN');
}

function write(record: PutRecord): void {
  out.write(`${JSON.stringify(record)}\n`);
}

const inFlight = new Map<number, PutRecord['kind']>();
let next = 0;
let stopping = false;
const started = Date.now();
let credit = 0;
let lastTick = started;

function putOne(): void {
  const id = index * ID_BLOCK + next;
  next += 1;
  const kind = kindOf(seed, id);
  const kwargs: SoakKwargs = { id };
  inFlight.set(id, kind);
  PUTTERS[kind].put(kwargs).then(
    () => {
      inFlight.delete(id);
      write({ id, kind, outcome: 'accepted', at: Date.now() });
    },
    (error: unknown) => {
      inFlight.delete(id);
      const name = error instanceof Error ? error.name : typeof error;
      const message = error instanceof Error ? error.message : String(error);
      write({ id, kind, outcome: isUnknownOutcome(error) ? 'unknown' : 'rejected', at: Date.now(), error: name, message });
    },
  );
}

const timer = setInterval(() => {
  const now = Date.now();
  credit = Math.min(credit + ((now - lastTick) / 1000) * rate, rate * MAX_BACKLOG_SECONDS);
  lastTick = now;
  while (credit >= 1 && inFlight.size < MAX_IN_FLIGHT) {
    credit -= 1;
    putOne();
  }
}, TICK_MS);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  const deadline = Date.now() + SETTLE_MS;
  while (inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  for (const [id, kind] of inFlight) write({ id, kind, outcome: 'unknown', at: Date.now(), error: 'pending', message: 'never settled' });
  // A close that waits on a wedged connection must not keep the soak waiting: the records are written.
  await Promise.race([queue.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  await new Promise<void>((resolve) => out.end(resolve));
  process.exit(0);
}

process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
