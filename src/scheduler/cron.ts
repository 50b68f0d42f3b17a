/**
 * The cron expressions of schedules, through croner (parsing and next-run computation only: the
 * scheduler's timing lives in beanstalkd's delayed marker jobs, never in croner's timers).
 */
import type { Cron } from 'croner';
import { lazyRequire } from '../loader/lazy-require.js';

// Loaded on first use: every process that imports bsworker imports this file (through JobQueue), and
// only those that declare a schedule need croner.
const loadCroner = lazyRequire<typeof import('croner')>('croner');

/**
 * A compiled expression. Throws a TypeError naming the expression when croner cannot parse it, and a
 * RangeError when it never fires (`0 0 30 2 *`), so a typo fails when the jobs module is imported.
 */
export function compileCron(expression: string, timezone: string): Cron {
  let cron: Cron;
  try {
    // 5 fields, or 6 with seconds first; croner's 7th (years) field is left out: it is not cron.
    cron = new (loadCroner().Cron)(expression, { paused: true, timezone, mode: '5-or-6-parts' });
  } catch (error) {
    throw new TypeError(
      `Expected the cron expression to be 5 fields (minute hour day month weekday) or 6 with seconds first, got ${JSON.stringify(expression)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (cron.nextRun() === null) throw new RangeError(`The cron expression ${JSON.stringify(expression)} never fires`);
  return cron;
}

/** Throws unless `timezone` is an IANA time zone name this Node knows (`UTC`, `Europe/Paris`). */
export function assertTimeZone(timezone: unknown): asserts timezone is string {
  if (typeof timezone !== 'string' || timezone.length === 0) {
    throw new TypeError(`Expected \`timezone\` to be an IANA time zone name such as 'Europe/Paris', got ${JSON.stringify(timezone)}`);
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new RangeError(`Expected \`timezone\` to be an IANA time zone name such as 'Europe/Paris', got ${JSON.stringify(timezone)}`);
  }
}

/** The first tick strictly after `after`, or null when the expression fires no more. */
export function nextTick(cron: Cron, after: Date): Date | null {
  return cron.nextRun(after);
}
