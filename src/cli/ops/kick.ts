/** `bsworker kick`, `bsworker kick-job` and `bsworker buried`: handling buried jobs from the shell. */
import type { Command } from 'commander';
import { decodeEnvelope } from '../../envelope/envelope.js';
import { withConnection } from '../connection.js';
import { UsageError } from '../errors.js';
import type { Output } from '../output.js';
import { integerIn, parseJobId, parseTube } from '../parse.js';
import { opsAction, urlOf, urlOption } from './common.js';

/** Where command output goes (injectable so tests can read it). */
export type Print = (line: string) => void;

/**
 * Kicks up to `bound` buried jobs of `tube` (all of them when unset). The bound is capped at the buried
 * count because `kick` moves delayed jobs when no buried ones are left, and this command promises only
 * buried ones.
 */
export async function kickTube(print: Print, options: { tube: string; bound?: number; url?: string }): Promise<number> {
  return withConnection(options.url, async (connection) => {
    const stats = await connection.statsTube(options.tube);
    const buried = stats?.buried ?? 0;
    const bound = Math.min(options.bound ?? buried, buried);
    if (bound === 0) {
      print(`no buried jobs in tube ${options.tube}`);
      return 0;
    }
    await connection.use(options.tube);
    const kicked = await connection.kick(bound);
    print(`kicked ${kicked} buried job${kicked === 1 ? '' : 's'} in tube ${options.tube} (${buried - kicked} still buried)`);
    return kicked;
  });
}

/** Kicks one buried or delayed job. An unknown id is a usage error. */
export async function kickJob(print: Print, options: { id: string; url?: string }): Promise<void> {
  await withConnection(options.url, async (connection) => {
    const stats = await connection.statsJob(options.id);
    if (!stats) throw new UsageError(`job ${options.id} does not exist`);
    if (stats.state !== 'buried' && stats.state !== 'delayed') {
      throw new UsageError(`job ${options.id} is ${stats.state}; only buried or delayed jobs can be kicked`);
    }
    await connection.kickJob(options.id);
    print(`kicked job ${options.id} (was ${stats.state} in tube ${stats.tube}, now ready)`);
  });
}

/** Prints a tube's buried count and its first buried job. */
export async function showBuried(print: Print, options: { tube: string; url?: string }): Promise<void> {
  await withConnection(options.url, async (connection) => {
    const stats = await connection.statsTube(options.tube);
    const buried = stats?.buried ?? 0;
    print(`tube ${options.tube}: ${buried} buried job${buried === 1 ? '' : 's'}`);
    if (buried === 0) return;
    await connection.use(options.tube);
    const job = await connection.peekBuried();
    if (!job) return;
    const jobStats = await connection.statsJob(job.id);
    const decoded = decodeEnvelope(job.body);
    print('first buried job:');
    print(`  id:        ${job.id}`);
    if (decoded.ok) {
      // JSON-quoted: a hostile body must not put terminal escape sequences on an operator's screen.
      print(`  func_name: ${JSON.stringify(decoded.envelope.func_name)}`);
      print(`  kwargs:    ${JSON.stringify(decoded.envelope.kwargs)}`);
    } else {
      const raw = job.body.toString('utf8');
      print(`  body:      ${JSON.stringify(raw.length > 200 ? `${raw.slice(0, 200)}…` : raw)} (not a bsworker job: ${decoded.message})`);
    }
    if (jobStats) {
      print(`  kicks:     ${jobStats.kicks}`);
      print(`  age:       ${formatAge(jobStats.ageSeconds)}`);
    }
  });
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3_600)}h ${Math.floor((seconds % 3_600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3_600)}h`;
}

/** Registers `kick`, `kick-job` and `buried`. */
export function registerKickCommands(program: Command, output: Output): void {
  program
    .command('kick')
    .description('kick buried jobs of a tube back to ready')
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .option('--bound <n>', 'kick at most this many (default: all buried jobs)', integerIn(1))
    .addOption(urlOption())
    .action(
      opsAction(async (options: { tube: string; bound?: number; url?: string }, command: Command) => {
        await kickTube(output.print, { ...options, url: urlOf(command, options) });
      }),
    );

  program
    .command('kick-job')
    .description('kick one buried or delayed job back to ready')
    .argument('<id>', 'the job id', parseJobId)
    .addOption(urlOption())
    .action(
      opsAction(async (id: string, options: { url?: string }, command: Command) => {
        await kickJob(output.print, { id, url: urlOf(command, options) });
      }),
    );

  program
    .command('buried')
    .description("show a tube's buried count and its first buried job")
    .requiredOption('--tube <tube>', 'the tube', parseTube)
    .addOption(urlOption())
    .action(
      opsAction(async (options: { tube: string; url?: string }, command: Command) => {
        await showBuried(output.print, { ...options, url: urlOf(command, options) });
      }),
    );
}
