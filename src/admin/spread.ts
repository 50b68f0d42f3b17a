/**
 * Acting on several servers at once: run a step on each, keep going past the ones that are down, and
 * share a bound (`kick 100`, `delete --limit 100`) between them by what each one holds. One server that
 * does not answer must never hide what the others say; every server down is still an error, since there
 * is then nothing to show.
 */
import { UnavailableError } from './errors.js';
import type { AdminServer } from './servers.js';

/** What {@link eachServer} gathered: each answering server's value, in the configured order, and who did not answer. */
export interface Spread<T> {
  readonly results: readonly { readonly server: AdminServer; readonly value: T }[];
  /** The servers (`host:port`) that could not be reached, in the configured order. */
  readonly unavailable: readonly string[];
}

/**
 * Runs `step` on every server at once. A server that is unreachable (the admin layer's
 * {@link UnavailableError} `SERVER_UNAVAILABLE`) is listed in `unavailable`; any other failure (bad
 * input, a bug, a full or draining server) rejects, as it would with one server. Rejects with the first
 * server's error when none answered.
 */
export async function eachServer<T>(servers: readonly AdminServer[], step: (server: AdminServer) => Promise<T>): Promise<Spread<T>> {
  const settled = await Promise.allSettled(servers.map((server) => step(server)));
  const results: { server: AdminServer; value: T }[] = [];
  const unavailable: string[] = [];
  let firstDown: unknown;
  settled.forEach((outcome, i) => {
    const server = servers[i] as AdminServer;
    if (outcome.status === 'fulfilled') results.push({ server, value: outcome.value });
    else if (isDown(outcome.reason)) {
      unavailable.push(server.name);
      firstDown ??= outcome.reason;
    }
  });
  const other = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected' && !isDown(outcome.reason));
  if (other) throw other.reason;
  if (results.length === 0 && firstDown !== undefined) throw firstDown;
  return { results, unavailable };
}

/** True for the failure that means "this server is down", as opposed to one about the request. */
export function isDown(error: unknown): boolean {
  return error instanceof UnavailableError && error.code === 'SERVER_UNAVAILABLE';
}

/**
 * Shares `bound` between servers holding `counts` jobs, in proportion to each count (largest
 * remainders first, ties to the earlier server), never more than a server holds. Without a bound, or
 * with one at least the sum, every server gets all it holds. With one server this is `min(bound, count)`.
 */
export function allot(bound: number | undefined, counts: readonly number[]): number[] {
  const sum = counts.reduce((total, count) => total + count, 0);
  if (bound === undefined || bound >= sum) return [...counts];
  const shares = counts.map((count) => (bound * count) / sum);
  const allotted = shares.map(Math.floor);
  let left = bound - allotted.reduce((total, share) => total + share, 0);
  const byRemainder = shares.map((share, i) => ({ i, rest: share - Math.floor(share) })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left === 0) break;
    if ((allotted[i] as number) < (counts[i] as number)) {
      allotted[i] = (allotted[i] as number) + 1;
      left -= 1;
    }
  }
  return allotted;
}
