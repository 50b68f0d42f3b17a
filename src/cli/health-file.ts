/**
 * `--health-file PATH`: while the worker runs, PATH holds the time it was last written, rewritten every
 * few seconds; it is removed on stop. A container healthcheck can then test that the file is fresh
 * (`find PATH -mmin -1`, or compare its mtime with the clock) without talking to the worker.
 */
import { rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import type { Logger } from '../logging/logger.js';

/** How often the file is rewritten. A healthcheck should allow a few of these (say 30 s) before failing. */
export const HEALTH_INTERVAL_MS = 5_000;

/** A running health file; {@link HealthFile.stop} stops writing it and removes it. */
export interface HealthFile {
  stop(): Promise<void>;
}

/**
 * Writes `path` now and every `intervalMs` while `isHealthy()` holds (a write is skipped otherwise, so
 * the file goes stale), and removes it on stop and when the process exits. Each write goes to a
 * temporary file first and is renamed over `path`: a healthcheck never reads a half-written file.
 * A failed write is logged once per run of failures, never fatal.
 */
export async function startHealthFile(
  path: string,
  logger: Logger,
  isHealthy: () => boolean = () => true,
  intervalMs = HEALTH_INTERVAL_MS,
): Promise<HealthFile> {
  const temporary = `${path}.${process.pid}.tmp`;
  let failing = false;
  let writing: Promise<void> = Promise.resolve();
  const write = async (): Promise<void> => {
    if (!isHealthy()) return;
    try {
      await writeFile(temporary, `${new Date().toISOString()}\n`);
      await rename(temporary, path);
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ path, error: (error as Error).message }, `cannot write the health file ${path}; retrying`);
      failing = true;
    }
  };
  // A process that exits without a stop (an uncaught exception, process.exit in a task) is not
  // healthy either: the file goes with it.
  const removeNow = (): void => {
    rmSync(path, { force: true });
    rmSync(temporary, { force: true });
  };
  process.once('exit', removeNow);
  await write();
  const timer = setInterval(() => {
    writing = writing.then(write);
  }, intervalMs);
  timer.unref();
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      process.off('exit', removeNow);
      await writing;
      await Promise.all([rm(path, { force: true }), rm(temporary, { force: true })]);
    },
  };
}
