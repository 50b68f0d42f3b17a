/**
 * Operations on a tube's jobs in bulk: kick the buried ones, delete the buried ones, pause and resume.
 * Each goes over every server that has the tube; one that is down is skipped and named (see `spread.ts`).
 */
import { NotFoundError as BeanstalkNotFound } from '../beanstalk/errors.js';
import { kickBuried } from '../beanstalk/kick-buried.js';
import type { Beanstalk } from '../beanstalk/types.js';
import { NotFoundError } from './errors.js';
import { checkInteger, checkTube } from './input.js';
import { noSuchTube } from './read.js';
import type { AdminServer } from './servers.js';
import { allot, eachServer, isDown } from './spread.js';
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

/** Each tube's buried count on one server: `tube`'s alone, or every tube's. */
async function buriedByTube(server: AdminServer, tube: string | undefined): Promise<Map<string, number>> {
  return server.run(async (connection) => {
    const names = tube === undefined ? await connection.listTubes() : [tube];
    // Pipelined: one round trip for every tube.
    const stats = await Promise.all(names.map((name) => connection.statsTube(name)));
    return new Map(names.map((name, i) => [name, stats[i]?.buried ?? 0]));
  });
}

/**
 * Kicks buried jobs (never delayed ones) of `tube`, or of every tube when undefined, up to `bound` per
 * tube over all the servers: a bound is shared between the servers in proportion to each one's buried
 * count ({@link allot}), so `kick 100` over three servers kicks 100, not 300. With a tube, one entry per
 * server that answered (kicked 0 when nothing was buried); with every tube, only those that had buried
 * jobs, sorted by name. A server that is down is skipped and listed in `unavailable` (several servers
 * only); every server down is the first one's error.
 */
export async function kickTubes(
  servers: readonly AdminServer[],
  tube: string | undefined,
  bound: number | undefined,
  several: boolean,
): Promise<KickResult> {
  if (tube !== undefined) checkTube(tube);
  if (bound !== undefined) checkInteger(bound, 'bound', 1, MAX_COUNT);
  const counts = await eachServer(servers, (server) => buriedByTube(server, tube));
  const plans = new Map<AdminServer, [name: string, wanted: number, buried: number][]>();
  const names = [...new Set(counts.results.flatMap(({ value }) => [...value.keys()]))].sort();
  for (const name of names) {
    const holding = counts.results.map(({ server, value }) => ({ server, buried: value.get(name) ?? 0 }));
    const shares = allot(
      bound,
      holding.map((entry) => entry.buried),
    );
    holding.forEach(({ server, buried }, i) => {
      if (buried === 0 && tube === undefined) return;
      const plan = plans.get(server) ?? [];
      plan.push([name, shares[i] ?? 0, buried]);
      plans.set(server, plan);
    });
  }
  // Servers at once; on each, tubes one after another: `kick` acts on the tube in use.
  const kicked = await eachServer([...plans.keys()], async (server) => {
    const done: KickedTube[] = [];
    for (const [name, wanted, buried] of plans.get(server) ?? []) {
      const result = wanted === 0 ? null : await server.inTube(name, (connection) => kickBuried(connection, name, wanted));
      done.push(result ? { server: server.name, ...result } : { server: server.name, tube: name, kicked: 0, stillBuried: buried });
    }
    return done;
  }).catch((error: unknown) => {
    // Every server that was to kick went down meanwhile: nothing was kicked that this call can report.
    if (several && isDown(error)) return { results: [], unavailable: [...plans.keys()].map((server) => server.name) };
    throw error;
  });
  const order = new Map(servers.map((server, i) => [server.name, i]));
  const results = kicked.results
    .flatMap(({ value }) => value)
    .sort((a, b) => (a.tube < b.tube ? -1 : a.tube > b.tube ? 1 : (order.get(a.server) ?? 0) - (order.get(b.server) ?? 0)));
  const total = results.reduce((sum, result) => sum + result.kicked, 0);
  if (!several) return { kicked: total, tubes: results };
  return { kicked: total, tubes: results, unavailable: inOrder(servers, [...counts.unavailable, ...kicked.unavailable]) };
}

/** `names` in the configured order, once each. */
function inOrder(servers: readonly AdminServer[], names: readonly string[]): string[] {
  return servers.filter((server) => names.includes(server.name)).map((server) => server.name);
}

/** Buried jobs of `tube` over every server that answers, 0 where the tube does not exist. */
export async function buriedCount(servers: readonly AdminServer[], tube: string): Promise<number> {
  const counts = await eachServer(servers, (server) => server.run(async (connection) => (await connection.statsTube(tube))?.buried ?? 0));
  return counts.results.reduce((sum, { value }) => sum + value, 0);
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
 * Deletes up to `count` buried jobs of `tube` (all of them when undefined), oldest first on each server,
 * server after server; a count is shared between the servers as a kick's bound is ({@link allot}).
 * `onDeleted` is called after each delete (a progress bar). Nothing to delete is not an error. A server
 * that is down, before or during, is skipped and listed in `unavailable` (several servers only).
 */
export async function deleteBuriedJobs(
  servers: readonly AdminServer[],
  tube: string,
  count: number | undefined,
  onDeleted: () => void,
  formatId: (server: AdminServer, id: string) => string,
  several: boolean,
): Promise<DeleteBuriedResult> {
  checkTube(tube);
  if (count !== undefined) checkInteger(count, 'count', 1, MAX_COUNT);
  const counts = await eachServer(servers, (server) => server.run(async (connection) => (await connection.statsTube(tube))?.buried ?? 0));
  const shares = allot(
    count,
    counts.results.map(({ value }) => value),
  );
  const ids: string[] = [];
  const unavailable = [...counts.unavailable];
  const perServer: { server: string; deleted: number; stillBuried: number }[] = [];
  for (const [i, { server, value: buried }] of counts.results.entries()) {
    const wanted = shares[i] ?? 0;
    let deleted = 0;
    if (wanted > 0) {
      try {
        deleted = await server.inTube(tube, (connection) =>
          deleteBuriedHere(connection, wanted, ids, onDeleted, (id) => formatId(server, id)),
        );
      } catch (error) {
        // Gone in the middle: what it deleted before is in `ids`, but its count is unknown.
        if (!several || !isDown(error)) throw error;
        unavailable.push(server.name);
        continue;
      }
    }
    perServer.push({ server: server.name, deleted, stillBuried: Math.max(0, buried - deleted) });
  }
  const deleted = perServer.reduce((sum, entry) => sum + entry.deleted, 0);
  const stillBuried = await buriedCount(servers, tube).catch((error: unknown) => {
    if (several && isDown(error)) return perServer.reduce((sum, entry) => sum + entry.stillBuried, 0);
    throw error;
  });
  if (!several) return { tube, deleted, ids, stillBuried };
  return { tube, deleted, ids, stillBuried, servers: perServer, unavailable: inOrder(servers, unavailable) };
}

/**
 * Sets the pause of `tube` to `seconds` (0 ends a pause) on every server that has the tube, and reads it
 * back. {@link NotFoundError} when no server that answered has it: beanstalkd answers `NOT_FOUND`, which
 * on its own reads like a missing job. A server that is down is listed in `unavailable` (several only).
 */
export async function pauseTube(servers: readonly AdminServer[], tube: string, seconds: number, several: boolean): Promise<PauseResult> {
  checkTube(tube);
  checkInteger(seconds, 'seconds', 0, MAX_COUNT);
  const settled = await eachServer(servers, (server) =>
    server.run(async (connection): Promise<PauseOnServer | undefined> => {
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
    }),
  );
  const done = settled.results.flatMap(({ value }) => (value ? [value] : []));
  const [first] = done;
  if (!first) throw new NotFoundError('TUBE_NOT_FOUND', noSuchTube(tube));
  const { server: _, ...figures } = first;
  return several ? { tube, ...figures, servers: done, unavailable: [...settled.unavailable] } : { tube, ...figures, servers: done };
}
