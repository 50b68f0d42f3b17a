/**
 * Kicking buried jobs only. beanstalkd's `kick` acts on the tube in use and, once no buried job is
 * left, moves delayed jobs too; capping the bound at the tube's buried count keeps delayed jobs where
 * they are. Shared by `bsworker kick` and the worker's auto-kick.
 */
import type { Beanstalk } from './types.js';

/** What one tube's kick did. */
export interface KickedTube {
  /** The tube name. */
  readonly tube: string;
  /** How many buried jobs were kicked to ready. */
  readonly kicked: number;
  /** The buried count before the kick minus `kicked`: what a bound left buried (jobs buried meanwhile are not counted). */
  readonly stillBuried: number;
}

/**
 * Kicks up to `bound` buried jobs of `tube` (all of them when unset) on `connection`, which is left
 * using `tube`. Resolves to null when the tube had no buried job.
 */
export async function kickBuried(connection: Beanstalk, tube: string, bound?: number): Promise<KickedTube | null> {
  const buried = (await connection.statsTube(tube))?.buried ?? 0;
  const limit = Math.min(bound ?? buried, buried);
  if (limit === 0) return null;
  await connection.use(tube);
  const kicked = await connection.kick(limit);
  return { tube, kicked, stillBuried: Math.max(0, buried - kicked) };
}
