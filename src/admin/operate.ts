/**
 * Operations on a tube's jobs in bulk: kick the buried ones, delete the buried ones, pause and resume.
 * Each goes over every server that has the tube.
 */
import { NotFoundError as BeanstalkNotFound } from '../beanstalk/errors.js';
import { kickBuried } from '../beanstalk/kick-buried.js';
import type { Beanstalk } from '../beanstalk/types.js';
import { NotFoundError } from './errors.js';
import { checkInteger, checkTube } from './input.js';
import { noSuchTube } from './read.js';
import type { AdminServer } from './servers.js';
import {
  type DeleteBuriedResult,
  type KickedTube,
  type KickResult,
  MAX_LISTED_IDS,
  type PauseOnServer,
  type PauseResult,
} from './types.js';

/** The largest count of the bulk operations: beanstalkd's own 32-bit bound. */
const MAX_COUNT = 4_294_967_295;

/**
 * Kicks buried jobs (never delayed ones) of `tube`, or of every tube when undefined, up to `bound` per
 * tube and server. With a tube, one entry per server (kicked 0 when nothing was buried); with every
 * tube, only those that had buried jobs, sorted by name.
 */
export async function kickTubes(servers: readonly AdminServer[], tube: string | undefined, bound: number | undefined): Promise<KickResult> {
  if (tube !== undefined) checkTube(tube);
  if (bound !== undefined) checkInteger(bound, 'bound', 1, MAX_COUNT);
  const results: KickedTube[] = [];
  for (const server of servers) {
    const tubes = tube === undefined ? (await server.run((connection) => connection.listTubes())).sort() : [tube];
    // Tubes one after another: `kick` acts on the tube in use.
    for (const name of tubes) {
      const result = await server.inTube(name, (connection) => kickBuried(connection, name, bound));
      if (result) results.push({ server: server.name, ...result });
      else if (tube !== undefined) results.push({ server: server.name, tube: name, kicked: 0, stillBuried: 0 });
    }
  }
  results.sort((a, b) => (a.tube < b.tube ? -1 : a.tube > b.tube ? 1 : 0));
  return { kicked: results.reduce((sum, result) => sum + result.kicked, 0), tubes: results };
}

/** Buried jobs of `tube` over every server, 0 where the tube does not exist. */
export async function buriedCount(servers: readonly AdminServer[], tube: string): Promise<number> {
  const counts = await Promise.all(
    servers.map((server) => server.run(async (connection) => (await connection.statsTube(tube))?.buried ?? 0)),
  );
  return counts.reduce((sum, count) => sum + count, 0);
}

/**
 * Deletes up to `count` buried jobs of the tube in use, oldest first. `peek-buried` returns the same job
 * until it is gone, so each delete waits for its peek.
 */
async function deleteBuriedHere(
  connection: Beanstalk,
  count: number,
  ids: string[],
  onDeleted: () => void,
  formatId: (id: string) => string,
): Promise<number> {
  let deleted = 0;
  // Bounded by attempts too: a job another client kicks and reserves between our peek and our delete
  // answers NOT_FOUND and is skipped, and a stream of those must not keep the loop going for ever.
  for (let attempts = 0; deleted < count && attempts < 2 * count; attempts += 1) {
    const job = await connection.peekBuried();
    if (!job) break;
    try {
      await connection.delete(job.id);
    } catch (error) {
      if (error instanceof BeanstalkNotFound) continue;
      throw error;
    }
    deleted += 1;
    if (ids.length < MAX_LISTED_IDS) ids.push(formatId(job.id));
    onDeleted();
  }
  return deleted;
}

/**
 * Deletes up to `count` buried jobs of `tube` (all of them when undefined), oldest first, server after
 * server. `onDeleted` is called after each delete (a progress bar). Nothing to delete is not an error.
 */
export async function deleteBuriedJobs(
  servers: readonly AdminServer[],
  tube: string,
  count: number | undefined,
  onDeleted: () => void,
  formatId: (server: AdminServer, id: string) => string,
): Promise<DeleteBuriedResult> {
  checkTube(tube);
  if (count !== undefined) checkInteger(count, 'count', 1, MAX_COUNT);
  const ids: string[] = [];
  let deleted = 0;
  for (const server of servers) {
    const buried = await server.run(async (connection) => (await connection.statsTube(tube))?.buried ?? 0);
    const wanted = Math.min(buried, (count ?? buried) - deleted);
    if (wanted <= 0) continue;
    deleted += await server.inTube(tube, (connection) =>
      deleteBuriedHere(connection, wanted, ids, onDeleted, (id) => formatId(server, id)),
    );
  }
  return { tube, deleted, ids, stillBuried: await buriedCount(servers, tube) };
}

/**
 * Sets the pause of `tube` to `seconds` (0 ends a pause) on every server that has the tube, and reads it
 * back. {@link NotFoundError} when no server has it: beanstalkd answers `NOT_FOUND`, which on its own
 * reads like a missing job.
 */
export async function pauseTube(servers: readonly AdminServer[], tube: string, seconds: number): Promise<PauseResult> {
  checkTube(tube);
  checkInteger(seconds, 'seconds', 0, MAX_COUNT);
  const done: PauseOnServer[] = [];
  for (const server of servers) {
    const result = await server.run(async (connection) => {
      // Pipelined: the state before, the pause, the state after, in one round trip.
      const [before, paused, after] = await Promise.all([
        connection.statsTube(tube),
        connection.pauseTube(tube, seconds).then(
          () => true,
          (error: unknown) => {
            if (error instanceof BeanstalkNotFound) return false;
            throw error;
          },
        ),
        connection.statsTube(tube),
      ]);
      if (!paused || before === null || after === null) return undefined;
      return {
        server: server.name,
        pauseSeconds: after.pauseSeconds,
        pausedSecondsLeft: after.pauseSeconds > 0 ? after.pauseTimeLeftSeconds : 0,
        previousSecondsLeft: before.pauseSeconds > 0 ? before.pauseTimeLeftSeconds : 0,
      };
    });
    if (result) done.push(result);
  }
  const [first] = done;
  if (!first) throw new NotFoundError('TUBE_NOT_FOUND', noSuchTube(tube));
  const { server: _, ...figures } = first;
  return { tube, ...figures, servers: done };
}
