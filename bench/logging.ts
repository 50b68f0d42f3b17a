/**
 * The cost of the worker's per-job log line: `logger.info({ tube, jobId, task, durationMs }, 'job completed')`
 * through bsworker's JSON-lines logger. Not part of `npm run bench`; run it with standard output sent
 * away, so the lines take the real batched-stdout path:
 *
 *   node --import tsx bench/logging.ts > /dev/null
 *
 * It prints microseconds per line to standard error: the median of several rounds of 100,000 lines,
 * one round of lines with nothing to escape and one where every line holds job data that needs escaping.
 */
import { createLogger } from '../src/logging/logger.js';

const LINES = 100_000;
const ROUNDS = 7;

if (process.stdout.isTTY) {
  process.stderr.write('Send standard output away: node --import tsx bench/logging.ts > /dev/null\n');
  process.exit(2);
}

const logger = createLogger({ level: 'info', pretty: false });

/** Microseconds per line of one round. */
function round(task: string): number {
  const started = process.hrtime.bigint();
  for (let index = 0; index < LINES; index++) {
    logger.info({ tube: 'emails', jobId: String(1_000_000 + index), task, durationMs: 1.234 }, 'job completed');
  }
  return Number(process.hrtime.bigint() - started) / 1_000 / LINES;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function measure(label: string, task: string): void {
  round(task); // warm-up: lets the JIT settle before timing
  const times = Array.from({ length: ROUNDS }, () => round(task));
  process.stderr.write(
    `${label}: ${median(times).toFixed(3)} us/line (median of ${ROUNDS} x ${LINES.toLocaleString('en')}; min ${Math.min(...times).toFixed(3)})\n`,
  );
}

measure('plain', 'welcome');
// U+2028 and U+202E in a field: the case escaping has to handle, not the common one.
measure('needs escaping', 'wel\u2028come\u202e');
