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
import { integerIn, parseTube } from '../parse.js';
import { endIfPartial, jsonOption, opsAction, parseJobRef, serverOf, serverOption, urlOf, urlOption } from './common.js';

/** One tube's part of the `kick --json` document. */
export interface KickedTube {
  readonly tube: string;
  /** How many buried jobs were kicked to ready. */
  readonly kicked: number;
  /** The buried count before the kick minus `kicked`: what a bound left buried (jobs buried meanwhile are not counted). */
  readonly stillBuried: number;
  /** Only with several servers configured: each answering server's part, in the configured order. */
  readonly servers?: readonly { readonly server: string; readonly kicked: number; readonly stillBuried: number }[];
}

/**
 * The `bsworker kick --json` document: `{ "kicked": 3, "tubes": [{ "tube": "emails", "kicked": 3, "stillBuried": 0 }] }`.
 * With `--tube`, `tubes` has exactly one entry (kicked 0 when nothing was buried); with `--all-tubes` it
 * lists, sorted by name, every tube that had buried jobs, and is empty when none had.
 *
 * With several servers configured, a bound is shared between them in proportion to each one's buried
 * count (a kick of 10 kicks 10 in all); each tube also lists its `servers`, and `unavailable` names the
 * servers that did not answer (nothing was kicked there; exit 3).
 */
export interface KickResult {
  /** The total kicked, over all tubes. */
  readonly kicked: number;
  readonly tubes: readonly KickedTube[];
  /** Only with several servers configured. */
  readonly unavailable?: readonly string[];
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

/**
 * The `kick --json` document of the admin layer's result: one entry per tube, summed over the servers
 * (without them for one server, with each one's part for several).
 */
export function kickJson(result: AdminKickResult): KickResult {
  if (result.unavailable === undefined) {
    return { kicked: result.kicked, tubes: result.tubes.map(({ tube, kicked, stillBuried }) => ({ tube, kicked, stillBuried })) };
  }
  const byTube = new Map<string, { server: string; kicked: number; stillBuried: number }[]>();
  for (const { server, tube, kicked, stillBuried } of result.tubes) {
    const list = byTube.get(tube) ?? [];
    list.push({ server, kicked, stillBuried });
    byTube.set(tube, list);
  }
  const tubes = [...byTube].map(([tube, servers]) => ({
    tube,
    kicked: servers.reduce((sum, entry) => sum + entry.kicked, 0),
    stillBuried: servers.reduce((sum, entry) => sum + entry.stillBuried, 0),
    servers,
  }));
  return { kicked: result.kicked, tubes, unavailable: result.unavailable };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function printKickText(output: Output, result: KickResult, allTubes: boolean): void {
  for (const tube of result.tubes) {
    // With several servers, where they were: `(on 127.0.0.1:11301: 3, 127.0.0.1:11302: 1)`.
    const where = tube.servers === undefined ? '' : `; ${tube.servers.map((entry) => `${entry.server}: ${entry.kicked}`).join(', ')}`;
    if (tube.kicked === 0 && tube.stillBuried === 0) output.print(`no buried jobs in tube ${tube.tube}`);
    else output.print(`kicked ${plural(tube.kicked, 'buried job')} in tube ${tube.tube} (${tube.stillBuried} still buried${where})`);
  }
  for (const server of result.unavailable ?? []) output.print(`server ${server} is down: nothing kicked there`);
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
  server?: string;
}

/** Registers `kick` and `kick-job`. */
export function registerKickCommands(program: Command, output: Output): void {
  program
    .command('kick')
    .description('kick buried jobs of a tube, or of every tube, back to ready (delayed jobs are left alone)')
    .option('--tube <tube>', 'the tube (give --tube or --all-tubes)', parseTube)
    .option('--all-tubes', 'every tube on the server')
    .option(
      '--bound <n>',
      'kick at most this many, per tube; with several servers, in all, shared by their buried counts (default: all buried jobs)',
      integerIn(1),
    )
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .action(
      opsAction(async (options: KickOptions, command: Command) => {
        // Exactly one: a forgotten --tube must not silently widen to every tube.
        if ((options.tube === undefined) === (options.allTubes !== true)) {
          throw new UsageError('give exactly one of --tube <tube> or --all-tubes');
        }
        const { result, count } = await withAdmin(
          urlOf(command, options),
          async (admin) => ({ result: kickJson(await admin.kick(options.tube, options.bound)), count: admin.serverNames.length }),
          serverOf(options),
        );
        if (options.json) printJson(output, result);
        else printKickText(output, result, options.allTubes === true);
        endIfPartial(result.unavailable, count);
      }),
    );

  program
    .command('kick-job')
    .description('kick one buried or delayed job back to ready')
    .argument('<id>', 'the job id (host:port/42 with several servers)', parseJobRef)
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .action(
      opsAction(async (id: string, options: { json?: boolean; url?: string; server?: string }, command: Command) => {
        const { server: _, ...result } = await withAdmin(urlOf(command, options), (admin) => admin.kickJob(id), serverOf(options));
        if (options.json) printJson(output, result satisfies KickJobResult);
        else output.print(`kicked job ${result.id} (was ${result.from} in tube ${result.tube}, now ready)`);
      }),
    );
}
