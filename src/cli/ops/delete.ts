/**
 * `bsworker delete ID` and `bsworker delete --tube T --buried`: removing jobs for good. Nothing is
 * deleted without an explicit id, or a tube plus a confirmation (a `[y/N]` prompt on a terminal,
 * `--yes` elsewhere).
 */

import { createInterface } from 'node:readline/promises';
import type CliProgress from 'cli-progress';
import type { Command } from 'commander';
import { NotFoundError } from '../../beanstalk/errors.js';
import type { Beanstalk } from '../../beanstalk/types.js';
import { lazyRequire } from '../../loader/lazy-require.js';
import { withConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import { type Output, printJson } from '../output.js';
import { integerIn, parseJobId, parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/**
 * The document `bsworker delete --json` prints, for one job and for bulk deletion alike.
 * `ids` lists at most {@link MAX_JSON_IDS} ids, in the order they were deleted; when `deleted` is
 * larger, the rest were deleted too but are not listed.
 */
export interface DeleteJson {
  /** How many jobs were deleted. */
  readonly deleted: number;
  /** The deleted jobs' ids (decimal strings), the first {@link MAX_JSON_IDS} of them. */
  readonly ids: readonly string[];
}

/** `--json` lists at most this many ids, so deleting a million jobs does not print a million lines. */
export const MAX_JSON_IDS = 1_000;
/** Bulk deletions of more jobs than this show a progress bar on a terminal. */
const PROGRESS_THRESHOLD = 100;

/** The `delete` options, as commander parsed them. */
interface DeleteOptions {
  tube?: string;
  buried?: boolean;
  limit?: number;
  yes?: boolean;
  json?: boolean;
  url?: string;
}

/**
 * Deletes one job in any state but reserved. beanstalkd lets only the reserving connection delete a
 * reserved job and answers NOT_FOUND to everyone else, which would read as "no such job": stats-job
 * tells the two apart.
 */
async function deleteOne(output: Output, id: string, options: DeleteOptions): Promise<void> {
  const state = await withConnection(options.url, async (connection) => {
    const stats = await connection.statsJob(id);
    if (!stats) throw new UsageError(`job ${id} does not exist`);
    if (stats.state === 'reserved') throw reservedError(id);
    try {
      await connection.delete(id);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      // It changed between the two commands: a worker reserved it, or another client deleted it.
      const now = await connection.statsJob(id);
      throw now?.state === 'reserved' ? reservedError(id) : new UsageError(`job ${id} does not exist (it was deleted just now)`);
    }
    return stats;
  });
  if (options.json) printJson(output, { deleted: 1, ids: [id] } satisfies DeleteJson);
  else output.print(`deleted job ${id} (it was ${state.state} in tube ${state.tube})`);
}

function reservedError(id: string): UsageError {
  return new UsageError(
    `job ${id} is reserved by a worker; only that worker can delete it. Try again once it is released or buried, or its TTR runs out`,
  );
}

/** Asks on the terminal; anything but y/yes (including Ctrl-C and end of input) is no. */
async function confirm(question: string): Promise<boolean> {
  // The prompt goes to stderr, so stdout stays clean for --json.
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    let answered = false;
    const answer = await new Promise<string>((resolve) => {
      // Ctrl-D or Ctrl-C: end the prompt's line so the next message starts on its own.
      prompt.once('close', () => {
        if (!answered) process.stderr.write('\n');
        resolve('');
      });
      prompt.once('SIGINT', () => prompt.close());
      prompt.question(question).then(
        (text) => {
          answered = true;
          resolve(text);
        },
        () => resolve(''),
      );
    });
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    prompt.close();
  }
}

/**
 * Deletes up to `count` buried jobs of the tube in use, oldest first, and returns their ids (the first
 * {@link MAX_JSON_IDS}) and how many were deleted. `peek-buried` returns the same job until it is gone,
 * so each delete waits for its peek.
 */
async function deleteBuried(connection: Beanstalk, count: number, onDeleted: () => void): Promise<{ deleted: number; ids: string[] }> {
  const ids: string[] = [];
  let deleted = 0;
  // Bounded by attempts too: a job another client kicks and reserves between our peek and our delete
  // answers NOT_FOUND and is skipped, and a stream of those must not keep the loop going forever.
  for (let attempts = 0; deleted < count && attempts < 2 * count; attempts += 1) {
    const job = await connection.peekBuried();
    if (!job) break;
    try {
      await connection.delete(job.id);
    } catch (error) {
      if (error instanceof NotFoundError) continue;
      throw error;
    }
    deleted += 1;
    if (ids.length < MAX_JSON_IDS) ids.push(job.id);
    onDeleted();
  }
  return { deleted, ids };
}

/** Deletes buried jobs of a tube after a confirmation. */
async function deleteBuriedInTube(output: Output, tube: string, options: DeleteOptions): Promise<void> {
  await withConnection(options.url, async (connection) => {
    const buried = (await connection.statsTube(tube))?.buried ?? 0;
    const count = Math.min(options.limit ?? buried, buried);
    if (count === 0) {
      if (options.json) printJson(output, { deleted: 0, ids: [] } satisfies DeleteJson);
      else output.print(`no buried jobs in tube ${tube}`);
      return;
    }
    const what = `${count} buried job${count === 1 ? '' : 's'} from tube ${tube}`;
    if (options.yes !== true) {
      if (!process.stdin.isTTY) throw new UsageError(`refusing to delete ${what} without confirmation: add --yes to delete without asking`);
      if (!(await confirm(`Delete ${what}? [y/N] `))) {
        if (options.json) printJson(output, { deleted: 0, ids: [] } satisfies DeleteJson);
        else output.print('nothing deleted');
        return;
      }
    }

    await connection.use(tube);
    const bar =
      // cli-progress draws on stderr: show it only when stderr is a terminal, whatever stdout is.
      process.stderr.isTTY === true && !options.json && count > PROGRESS_THRESHOLD
        ? new (loadProgress().SingleBar)(
            {
              format: `deleting buried jobs from ${tube} [{bar}] {value}/{total} ({eta_formatted} left)`,
              clearOnComplete: true,
              hideCursor: true,
            },
            loadProgress().Presets.shades_classic,
          )
        : undefined;
    bar?.start(count, 0);
    let result: { deleted: number; ids: string[] };
    try {
      result = await deleteBuried(connection, count, () => bar?.increment());
    } finally {
      bar?.stop();
    }

    if (options.json) {
      printJson(output, result satisfies DeleteJson);
      return;
    }
    const left = (await connection.statsTube(tube))?.buried ?? 0;
    output.print(`deleted ${result.deleted} buried job${result.deleted === 1 ? '' : 's'} from tube ${tube} (${left} still buried)`);
  });
}

/**
 * Checks that the command line names exactly one thing to delete: returns the tube for bulk deletion,
 * undefined for one job, or throws a {@link UsageError} saying what to give.
 */
function bulkTubeOf(id: string | undefined, options: DeleteOptions): string | undefined {
  if (id !== undefined) {
    if (options.tube !== undefined || options.buried === true || options.limit !== undefined) {
      throw new UsageError('give either a job id or --tube with --buried, not both');
    }
    return undefined;
  }
  if (options.tube === undefined) {
    throw new UsageError(
      options.buried === true
        ? '--buried needs --tube: which tube to delete buried jobs from'
        : 'give a job id (bsworker delete 42) or a tube (bsworker delete --tube emails --buried)',
    );
  }
  // Only buried jobs in bulk: deleting ready or delayed jobs en masse is too easy a mistake to offer.
  if (options.buried !== true) throw new UsageError('with --tube, give --buried: only buried jobs can be deleted in bulk');
  return options.tube;
}

/** Registers `delete`. */
export function registerDeleteCommand(program: Command, output: Output): void {
  program
    .command('delete')
    .description('delete one job by id, or the buried jobs of a tube')
    .argument('[id]', 'the job id (any state but reserved)', parseJobId)
    .option('--tube <tube>', 'delete buried jobs of this tube (with --buried)', parseTube)
    .option('--buried', 'delete the buried jobs of --tube, oldest first')
    .option('--limit <n>', 'delete at most n buried jobs (default: all)', integerIn(1))
    .option('-y, --yes', 'do not ask for confirmation (needed when stdin is not a terminal)')
    .addOption(jsonOption())
    .addOption(urlOption())
    .addHelpText('after', '\nExamples:\n  bsworker delete 42\n  bsworker delete --tube emails --buried --limit 100 --yes')
    .action(
      opsAction(async (id: string | undefined, options: DeleteOptions, command: Command) => {
        const tube = bulkTubeOf(id, options);
        const resolved = { ...options, url: urlOf(command, options) };
        if (tube !== undefined) await deleteBuriedInTube(output, tube, resolved);
        else if (id !== undefined) await deleteOne(output, id, resolved);
      }),
    );
}

// Loaded on first use, like the table library: only a long bulk delete on a terminal draws a bar.
const loadProgress = lazyRequire<typeof CliProgress>('cli-progress');
