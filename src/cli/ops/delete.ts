/**
 * `bsworker delete ID` and `bsworker delete --tube T --buried`: removing jobs for good. Nothing is
 * deleted without an explicit id, or a tube plus a confirmation (a `[y/N]` prompt on a terminal,
 * `--yes` elsewhere).
 */

import { createInterface } from 'node:readline/promises';
import type CliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { MAX_LISTED_IDS } from '../../admin/types.js';
import { lazyRequire } from '../../loader/lazy-require.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { type Output, printJson } from '../output.js';
import { integerIn, parseTube } from '../parse.js';
import { buriedIn, endIfPartial, jsonOption, opsAction, parseJobRef, serverOf, serverOption, urlOf, urlOption } from './common.js';

/**
 * The document `bsworker delete --json` prints, for one job and for bulk deletion alike.
 * `ids` lists at most {@link MAX_JSON_IDS} ids, in the order they were deleted; when `deleted` is
 * larger, the rest were deleted too but are not listed.
 */
export interface DeleteJson {
  /** How many jobs were deleted. */
  readonly deleted: number;
  /** The deleted jobs' ids (decimal strings; `host:port/42` with several servers), the first {@link MAX_JSON_IDS} of them. */
  readonly ids: readonly string[];
  /** Only for `--buried` with several servers configured: what each answering server deleted. */
  readonly servers?: readonly { readonly server: string; readonly deleted: number }[];
  /** Only for `--buried` with several servers configured: the servers that did not answer (exit 3). */
  readonly unavailable?: readonly string[];
}

/** `--json` lists at most this many ids, so deleting a million jobs does not print a million lines. */
export const MAX_JSON_IDS = MAX_LISTED_IDS;
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
  server?: string;
}

/** Deletes one job in any state but reserved (the admin layer says why not). */
async function deleteOne(output: Output, id: string, options: DeleteOptions): Promise<void> {
  const result = await withAdmin(options.url, (admin) => admin.deleteJob(id), serverOf(options));
  if (options.json) printJson(output, { deleted: 1, ids: [result.id] } satisfies DeleteJson);
  else output.print(`deleted job ${result.id} (it was ${result.state} in tube ${result.tube})`);
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

/** Deletes buried jobs of a tube after a confirmation. */
async function deleteBuriedInTube(output: Output, tube: string, options: DeleteOptions): Promise<void> {
  await withAdmin(options.url, (admin: Admin) => deleteBuriedWith(admin, output, tube, options), serverOf(options));
}

async function deleteBuriedWith(admin: Admin, output: Output, tube: string, options: DeleteOptions): Promise<void> {
  const buried = await buriedIn(admin, tube);
  const count = Math.min(options.limit ?? buried, buried);
  // Nothing deleted: with several servers, still say which did not answer (they may hold some).
  const none = async (): Promise<DeleteJson> => {
    if (!admin.several) return { deleted: 0, ids: [] };
    const down = (await admin.servers()).filter((server) => !server.up).map((server) => server.server);
    return { deleted: 0, ids: [], servers: [], unavailable: down };
  };
  if (count === 0) {
    const result = await none();
    if (options.json) printJson(output, result);
    else output.print(`no buried jobs in tube ${tube}`);
    endIfPartial(result.unavailable, admin.serverNames.length);
    return;
  }
  const what = `${count} buried job${count === 1 ? '' : 's'} from tube ${tube}`;
  if (options.yes !== true) {
    if (!process.stdin.isTTY) throw new UsageError(`refusing to delete ${what} without confirmation: add --yes to delete without asking`);
    if (!(await confirm(`Delete ${what}? [y/N] `))) {
      if (options.json) printJson(output, await none());
      else output.print('nothing deleted');
      return;
    }
  }

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
  let result: Awaited<ReturnType<Admin['deleteBuried']>>;
  try {
    result = await admin.deleteBuried(tube, count, () => bar?.increment());
  } finally {
    bar?.stop();
  }

  const perServer = result.servers?.map(({ server, deleted }) => ({ server, deleted }));
  if (options.json) {
    printJson(
      output,
      (perServer === undefined
        ? { deleted: result.deleted, ids: result.ids }
        : { deleted: result.deleted, ids: result.ids, servers: perServer, unavailable: result.unavailable ?? [] }) satisfies DeleteJson,
    );
  } else {
    const where = perServer === undefined ? '' : `; ${perServer.map((entry) => `${entry.server}: ${entry.deleted}`).join(', ')}`;
    output.print(
      `deleted ${result.deleted} buried job${result.deleted === 1 ? '' : 's'} from tube ${tube} (${result.stillBuried} still buried${where})`,
    );
    for (const server of result.unavailable ?? []) output.print(`server ${server} is down: nothing deleted there`);
  }
  endIfPartial(result.unavailable, admin.serverNames.length);
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
    .argument('[id]', 'the job id, any state but reserved (host:port/42 with several servers)', parseJobRef)
    .option('--tube <tube>', 'delete buried jobs of this tube (with --buried)', parseTube)
    .option('--buried', 'delete the buried jobs of --tube, oldest first')
    .option('--limit <n>', 'delete at most n buried jobs (default: all)', integerIn(1))
    .option('-y, --yes', 'do not ask for confirmation (needed when stdin is not a terminal)')
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
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
