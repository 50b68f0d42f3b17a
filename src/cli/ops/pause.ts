/**
 * `bsworker pause` and `bsworker resume`: stop a tube handing out jobs for a while (`pause-tube`), for
 * example while a downstream service is down. Puts still land in a paused tube; only reserves wait.
 */
import type { Command } from 'commander';
import type { PauseOnServer } from '../../admin/types.js';
import { withAdmin } from '../connection.js';
import { colors, formatDuration, type Output, printJson } from '../output.js';
import { integerIn, parseTube } from '../parse.js';
import { endIfPartial, jsonOption, opsAction, serverOf, serverOption, urlOf, urlOption } from './common.js';

/**
 * What `bsworker pause --json` and `bsworker resume --json` print: the tube's pause as the server
 * reports it right after the command.
 *
 * ```json
 * { "tube": "emails", "pauseSeconds": 600, "pausedSecondsLeft": 599, "previousSecondsLeft": 0 }
 * ```
 */
export interface PauseJson {
  readonly tube: string;
  /** The pause now set, in seconds (`pause`); 0 after `resume` or `pause --seconds 0`. */
  readonly pauseSeconds: number;
  /** Seconds until the pause ends (`pause-time-left`, rounded down); 0 when not paused. */
  readonly pausedSecondsLeft: number;
  /** Seconds that were left of an earlier pause, which this command replaced; 0 when there was none. */
  readonly previousSecondsLeft: number;
  /** Only with several servers configured: the pause on each server that has the tube (the fields above are the first's). */
  readonly servers?: readonly PauseOnServer[];
  /** Only with several servers configured: the servers that did not answer, where nothing changed (exit 3). */
  readonly unavailable?: readonly string[];
}

/**
 * Sets the pause of `tube` to `seconds` (0 ends a pause) and reads the result back from the server. A
 * tube the server does not know is the admin layer's NotFoundError (exit 2). Resolves to the `--json`
 * document and how many servers were asked.
 */
export async function setPause(
  url: string | undefined,
  tube: string,
  seconds: number,
  server?: string,
): Promise<{ readonly json: PauseJson; readonly configured: number }> {
  const [result, configured] = await withAdmin(
    url,
    async (admin) => [await admin.pause(tube, seconds), admin.serverNames.length] as const,
    server === undefined ? {} : { server },
  );
  const figures = {
    tube: result.tube,
    pauseSeconds: result.pauseSeconds,
    pausedSecondsLeft: result.pausedSecondsLeft,
    previousSecondsLeft: result.previousSecondsLeft,
  };
  const json = result.unavailable === undefined ? figures : { ...figures, servers: result.servers, unavailable: result.unavailable };
  return { json, configured };
}

/** With several servers: where the pause now holds, and where it could not be set. */
function printWhere(output: Output, result: PauseJson): void {
  if (result.servers === undefined) return;
  output.print(`on ${result.servers.map((entry) => entry.server).join(', ')}`);
  for (const server of result.unavailable ?? []) output.print(`server ${server} is down: its tube ${result.tube} was not changed`);
}

function printPaused(output: Output, result: PauseJson, seconds: number): void {
  const c = colors(output);
  const { tube, previousSecondsLeft } = result;
  const left = formatDuration(previousSecondsLeft);
  if (seconds === 0) {
    output.print(
      previousSecondsLeft > 0
        ? `${c.green('resumed')} tube ${tube} (its pause had ${left} left): workers get its jobs again`
        : `tube ${tube} was not paused; nothing changed`,
    );
    return;
  }
  // Whole seconds: the server counts the pause from when it got the command.
  const until = new Date(Date.now() + seconds * 1_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const replaced = previousSecondsLeft > 0 ? `, replacing a pause with ${left} left` : '';
  output.print(
    `${c.yellow('paused')} tube ${tube} for ${formatDuration(seconds)} (until ${until}${replaced}): puts are accepted, reserves wait`,
  );
  output.print(`end it early with: bsworker resume --tube ${tube}`);
}

/** Registers `pause` and `resume`. */
export function registerPauseCommands(program: Command, output: Output): void {
  program
    .command('pause')
    .description('stop a tube handing out jobs for some seconds (puts are still accepted)')
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .requiredOption('--seconds <n>', 'how long; 0 ends a pause', integerIn(0))
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .action(
      opsAction(async (options: { tube: string; seconds: number; json?: boolean; url?: string; server?: string }, command: Command) => {
        const { json: result, configured } = await setPause(
          urlOf(command, options),
          options.tube,
          options.seconds,
          serverOf(options).server,
        );
        if (options.json) printJson(output, result);
        else {
          printPaused(output, result, options.seconds);
          printWhere(output, result);
        }
        endIfPartial(result.unavailable, configured);
      }),
    );

  program
    .command('resume')
    .description('end the pause of a tube now, so workers get its jobs again')
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .addOption(jsonOption())
    .addOption(urlOption())
    .addOption(serverOption())
    .action(
      opsAction(async (options: { tube: string; json?: boolean; url?: string; server?: string }, command: Command) => {
        const { json: result, configured } = await setPause(urlOf(command, options), options.tube, 0, serverOf(options).server);
        if (options.json) printJson(output, result);
        else {
          printPaused(output, result, 0);
          printWhere(output, result);
        }
        endIfPartial(result.unavailable, configured);
      }),
    );
}
