/**
 * `bsworker kick` and `bsworker kick-job`: moving buried jobs back to ready from the shell. Each command
 * gathers one result object (the `--json` document) and prints it either as JSON or as text, so the two
 * outputs cannot drift apart.
 */
import type { Command } from 'commander';
import type { KickResult as AdminKickResult } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { UsageError } from '../errors.js';
import { type Output, printJson } from '../output.js';
import { integerIn, parseJobId, parseTube } from '../parse.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/** One tube's part of the `kick --json` document. */
export interface KickedTube {
  readonly tube: string;
  /** How many buried jobs were kicked to ready. */
  readonly kicked: number;
  /** The buried count before the kick minus `kicked`: what a bound left buried (jobs buried meanwhile are not counted). */
  readonly stillBuried: number;
}

/**
 * The `bsworker kick --json` document: `{ "kicked": 3, "tubes": [{ "tube": "emails", "kicked": 3, "stillBuried": 0 }] }`.
 * With `--tube`, `tubes` has exactly one entry (kicked 0 when nothing was buried); with `--all-tubes` it
 * lists, sorted by name, every tube that had buried jobs, and is empty when none had.
 */
export interface KickResult {
  /** The total kicked, over all tubes. */
  readonly kicked: number;
  readonly tubes: readonly KickedTube[];
}

/** The `bsworker kick-job --json` document: `{ "id": "42", "kicked": true, "from": "buried", "tube": "emails" }`. */
export interface KickJobResult {
  readonly id: string;
  /** Always true: a job that cannot be kicked is an error (exit 2), not a `false`. */
  readonly kicked: true;
  /** The state the job was kicked from; it is ready now. */
  readonly from: 'buried' | 'delayed';
  readonly tube: string;
}

/** The `kick --json` document of the admin layer's result (without the server of each tube). */
export function kickJson(result: AdminKickResult): KickResult {
  return { kicked: result.kicked, tubes: result.tubes.map(({ tube, kicked, stillBuried }) => ({ tube, kicked, stillBuried })) };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function printKickText(output: Output, result: KickResult, allTubes: boolean): void {
  for (const tube of result.tubes) {
    if (tube.kicked === 0 && tube.stillBuried === 0) output.print(`no buried jobs in tube ${tube.tube}`);
    else output.print(`kicked ${plural(tube.kicked, 'buried job')} in tube ${tube.tube} (${tube.stillBuried} still buried)`);
  }
  if (!allTubes) return;
  if (result.tubes.length === 0) output.print('no buried jobs in any tube');
  else output.print(`total: kicked ${plural(result.kicked, 'buried job')} in ${plural(result.tubes.length, 'tube')}`);
}

interface KickOptions {
  tube?: string;
  allTubes?: boolean;
  bound?: number;
  json?: boolean;
  url?: string;
}

/** Registers `kick` and `kick-job`. */
export function registerKickCommands(program: Command, output: Output): void {
  program
    .command('kick')
    .description('kick buried jobs of a tube, or of every tube, back to ready (delayed jobs are left alone)')
    .option('--tube <tube>', 'the tube (give --tube or --all-tubes)', parseTube)
    .option('--all-tubes', 'every tube on the server')
    .option('--bound <n>', 'kick at most this many, per tube (default: all buried jobs)', integerIn(1))
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: KickOptions, command: Command) => {
        // Exactly one: a forgotten --tube must not silently widen to every tube.
        if ((options.tube === undefined) === (options.allTubes !== true)) {
          throw new UsageError('give exactly one of --tube <tube> or --all-tubes');
        }
        const result = kickJson(await withAdmin(urlOf(command, options), (admin) => admin.kick(options.tube, options.bound)));
        if (options.json) printJson(output, result);
        else printKickText(output, result, options.allTubes === true);
      }),
    );

  program
    .command('kick-job')
    .description('kick one buried or delayed job back to ready')
    .argument('<id>', 'the job id', parseJobId)
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (id: string, options: { json?: boolean; url?: string }, command: Command) => {
        const { server: _, ...result } = await withAdmin(urlOf(command, options), (admin) => admin.kickJob(id));
        if (options.json) printJson(output, result satisfies KickJobResult);
        else output.print(`kicked job ${result.id} (was ${result.from} in tube ${result.tube}, now ready)`);
      }),
    );
}
