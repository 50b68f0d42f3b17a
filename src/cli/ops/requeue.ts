/**
 * `bsworker requeue --from DEAD --tube T`: puts the dead letters that failed in tube T back into it, with
 * their failure history, once the bug that killed them is fixed. Letters of other tubes stay where they
 * are. `bsworker requeue --job ID` puts one letter back into the tube its record names. The new job is put before its letter is deleted, so a failure between leaves a duplicate, never a
 * loss; the output says so for each one.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { SCAN_MAX } from '../../admin/scan.js';
import type { RequeueResult } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { type Output, printJson, terminalSafeText } from '../output.js';
import { integerIn, parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

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
    .option('--job <id>', 'put back this one dead letter (42, or host:port/42), into the tube its record names')
    .option('--limit <n>', 'put back at most n (default: all)', integerIn(1))
    .option('--cursor <id>', 'go on below this id (printed by a requeue that stopped early)', parseCursorOption)
    .option('--scan <n>', 'examine at most n job ids (default: 100000)', integerIn(1, SCAN_MAX.scan))
    .addOption(jsonOption())
    .addOption(urlOption())
    .addHelpText(
      'after',
      '\nGive --from and --tube, or --job. Each job is put back before its dead letter is deleted: an interruption leaves a duplicate, never a loss.\n\nExamples:\n  bsworker requeue --from failed_jobs --tube emails\n  bsworker requeue --from failed_jobs --tube emails --limit 10 --json\n  bsworker requeue --job 4242',
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
          const one = await withAdmin(urlOf(command, options), (admin) => admin.requeueJob(job));
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
        const result = await withAdmin(urlOf(command, options), (admin) =>
          admin.requeue({ from, tube, limit: options.limit, cursor: options.cursor, scan: options.scan }),
        );
        const problems: string[] = [];
        if (options.json) printJson(output, result);
        else printRequeueText(output, result, (line) => problems.push(line));
        for (const line of problems) process.stderr.write(`bsworker: warning: ${line}\n`);
        // Exit 1: something needs an operator, even though nothing was lost.
        if (result.duplicates.length > 0 || result.failed.length > 0) {
          throw new Error(
            `${plural(result.duplicates.length, 'letter')} left in both tubes, ${plural(result.failed.length, 'letter')} not put back`,
          );
        }
      }),
    );
}
