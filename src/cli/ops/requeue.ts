/**
 * `bsworker requeue --from DEAD --tube T`: puts the dead letters that failed in tube T back into it, with
 * their failure history, once the bug that killed them is fixed. Letters of other tubes stay where they
 * are. `bsworker requeue --job ID` puts one letter back into the tube its record names. The new job is put before its letter is deleted, so a failure between leaves a duplicate, never a
 * loss; the output says so for each one.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { Admin } from '../../admin/admin.js';
import { UnavailableError } from '../../admin/errors.js';
import { SCAN_MAX } from '../../admin/scan.js';
import type { RequeueResult } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { type Output, printJson, terminalSafeText } from '../output.js';
import { integerIn, parseTube } from '../parse.js';
import { endIfPartial, jsonOption, opsAction, parseJobRef, serverOf, serverOption, urlOf, urlOption } from './common.js';

/**
 * What `bsworker requeue --json` prints when several servers are configured and no `--server` is given:
 * each answering server's requeue (letters go back on the server they are on; a `--limit` counts over
 * all of them), and the servers that did not answer (exit 3).
 */
export interface SeveralRequeueJson {
  readonly from: string;
  readonly tube: string;
  /** Over every server. */
  readonly requeued: number;
  readonly servers: readonly RequeueResult[];
  readonly unavailable: readonly string[];
}

/** The `requeue` options, as commander parsed them. */
interface RequeueCommandOptions {
  from?: string;
  tube?: string;
  job?: string;
  limit?: number;
  cursor?: string;
  scan?: number;
  json?: boolean;
  url?: string;
  server?: string;
}

/** The requeue of every server in turn, the limit shared (what is left of it goes to the next one). */
async function requeueEach(
  admin: Admin,
  options: { from: string; tube: string; limit?: number; scan?: number },
): Promise<SeveralRequeueJson> {
  const servers: RequeueResult[] = [];
  const unavailable: string[] = [];
  let requeued = 0;
  for (const server of admin.serverNames) {
    const limit = options.limit === undefined ? undefined : options.limit - requeued;
    if (limit !== undefined && limit <= 0) break;
    try {
      const result = await admin.requeue({ ...options, limit, server });
      servers.push(result);
      requeued += result.requeued;
    } catch (error) {
      if (!(error instanceof UnavailableError) || error.code !== 'SERVER_UNAVAILABLE') throw error;
      unavailable.push(server);
    }
  }
  if (servers.length === 0 && unavailable.length > 0) throw new UsageError(`no beanstalkd server answered (${unavailable.join(', ')})`);
  return { from: options.from, tube: options.tube, requeued, servers, unavailable };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Prints what was put back, what was left alone and what to look at. */
function printRequeueText(output: Output, result: RequeueResult, errorLine: (line: string) => void): void {
  const ids = result.jobs.map((job) => job.id);
  const shown = ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, …` : ids.join(', ');
  output.print(
    `requeued ${plural(result.requeued, 'dead letter')} from tube ${result.from} into tube ${result.tube}${ids.length > 0 ? ` (new ids ${shown})` : ''}`,
  );
  if (result.otherTube > 0 || result.notDeadLetters > 0) {
    output.print(
      `left alone: ${plural(result.otherTube, 'letter')} of other tubes, ${plural(result.notDeadLetters, 'job')} that bsworker cannot put back (no dead-letter record)`,
    );
  }
  for (const duplicate of result.duplicates) {
    errorLine(
      `job ${duplicate.id} was put back but dead letter ${duplicate.deadLetterId} could not be deleted (${terminalSafeText(duplicate.error)}): it is in both tubes now; delete one`,
    );
  }
  for (const failure of result.failed) {
    errorLine(`dead letter ${failure.deadLetterId} was not put back and is unchanged: ${terminalSafeText(failure.error)}`);
  }
  if (!result.exhausted) {
    const why =
      result.stoppedBy === 'limit'
        ? 'the --limit was reached'
        : result.stoppedBy === 'deadline'
          ? 'time ran out'
          : 'the scan bound was reached';
    output.print(`stopped before the oldest ids (${why}): go on with --cursor ${result.nextCursor}`);
  }
}

/** `--cursor`: digits, as a requeue printed it. */
function parseCursorOption(value: string): string {
  if (!/^[0-9]{1,20}$/.test(value.trim())) throw new InvalidArgumentError('expected a cursor printed by an earlier requeue (digits)');
  return value.trim();
}

/** Registers `requeue`. */
export function registerRequeueCommand(program: Command, output: Output): void {
  program
    .command('requeue')
    .description('put the dead letters of a tube back into it, failure history kept (others are left as they were)')
    .option('--from <tube>', 'the dead-letter tube (the --dead-letter of the workers)', parseTube)
    .option('--tube <tube>', 'the tube the jobs failed in: only its letters go back, into it', parseTube)
    .option('--job <id>', 'put back this one dead letter (42, or host:port/42), into the tube its record names', parseJobRef)
    .option('--limit <n>', 'put back at most n (default: all)', integerIn(1))
    .option('--cursor <id>', 'go on below this id (printed by a requeue that stopped early)', parseCursorOption)
    .option('--scan <n>', 'examine at most n job ids (default: 100000)', integerIn(1, SCAN_MAX.scan))
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .addHelpText(
      'after',
      '\nWith several servers (--url a,b,c), the letters of each server go back on it, server after server (--cursor needs --server).\nGive --from and --tube, or --job. Each job is put back before its dead letter is deleted: an interruption leaves a duplicate, never a loss.\n\nExamples:\n  bsworker requeue --from failed_jobs --tube emails\n  bsworker requeue --from failed_jobs --tube emails --limit 10 --json\n  bsworker requeue --job 4242',
    )
    .action(
      opsAction(async (options: RequeueCommandOptions, command: Command) => {
        const { from, tube, job } = options;
        if (job !== undefined) {
          if (
            from !== undefined ||
            tube !== undefined ||
            options.limit !== undefined ||
            options.cursor !== undefined ||
            options.scan !== undefined
          )
            throw new UsageError('--job puts back one letter: give it without --from, --tube, --limit, --cursor or --scan');
          const one = await withAdmin(urlOf(command, options), (admin) => admin.requeueJob(job), serverOf(options));
          if (options.json) printJson(output, one);
          else output.print(`requeued dead letter ${one.deadLetterId} into tube ${terminalSafeText(one.tube)} as job ${one.id}`);
          if (!one.deadLetterDeleted) {
            throw new Error(
              `job ${one.id} was put back but dead letter ${one.deadLetterId} could not be deleted: it is in both tubes now; delete one`,
            );
          }
          return;
        }
        if (from === undefined || tube === undefined) throw new UsageError('give --from DEAD and --tube TUBE (or --job ID for one letter)');
        const outcome = await withAdmin(
          urlOf(command, options),
          async (admin) => {
            if (admin.serverNames.length < 2) {
              return { one: await admin.requeue({ from, tube, limit: options.limit, cursor: options.cursor, scan: options.scan }) };
            }
            if (options.cursor !== undefined) throw new UsageError('--cursor is a position on one server: give --server too');
            return { several: await requeueEach(admin, { from, tube, limit: options.limit, scan: options.scan }) };
          },
          serverOf(options),
        );
        const results = outcome.one ? [outcome.one] : (outcome.several?.servers ?? []);
        const problems: string[] = [];
        if (options.json) printJson(output, outcome.one ?? outcome.several);
        else if (outcome.one) printRequeueText(output, outcome.one, (line) => problems.push(line));
        else {
          for (const result of results) {
            output.print(`${result.server}:`);
            printRequeueText(output, result, (line) => problems.push(`${result.server}: ${line}`));
          }
          for (const server of outcome.several?.unavailable ?? [])
            output.print(`server ${server} is down: its dead letters were not looked at`);
        }
        for (const line of problems) process.stderr.write(`bsworker: warning: ${line}\n`);
        const duplicates = results.reduce((sum, result) => sum + result.duplicates.length, 0);
        const failed = results.reduce((sum, result) => sum + result.failed.length, 0);
        // Exit 1: something needs an operator, even though nothing was lost.
        if (duplicates > 0 || failed > 0) {
          throw new Error(`${plural(duplicates, 'letter')} left in both tubes, ${plural(failed, 'letter')} not put back`);
        }
        if (outcome.several) endIfPartial(outcome.several.unavailable, outcome.several.servers.length + outcome.several.unavailable.length);
      }),
    );
}
