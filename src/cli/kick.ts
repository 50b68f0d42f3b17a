/** `bsworker kick`, `bsworker kick-job` and `bsworker buried`: handling buried jobs from the shell. */
import { decodeEnvelope } from '../envelope/envelope.js';
import { withConnection } from './connection.js';
import { UsageError } from './errors.js';

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
