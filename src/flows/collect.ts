/**
 * A group's callback collecting its members' return values. Each member put `{"member", "value"}` into
 * the group's results tube before it deleted its barrier job, so a callback that finds the barrier
 * empty finds every result there. It reserves them on a connection of its own (the worker's connections
 * watch task tubes, and a reserve there would hand out task jobs) and holds them while it runs: on
 * success they are deleted, on anything else the connection closes and beanstalkd puts them back to
 * ready for the callback's next run. A member that ran twice put its result twice; the first is kept.
 */
import type { Beanstalk } from '../beanstalk/types.js';
import { FlowStepError } from './advance.js';
import type { ChordResultsMeta } from './meta.js';

/** The members' results, held reserved until {@link CollectedResults.consume} or {@link CollectedResults.giveBack}. */
export class CollectedResults {
  #done = false;

  constructor(
    private readonly connection: Beanstalk,
    /** The members' return values, in the group's order. */
    readonly values: readonly unknown[],
    private readonly ids: readonly string[],
  ) {}

  /** The callback succeeded: the results are deleted, then the connection closed. */
  async consume(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      for (const id of this.ids) await this.connection.delete(id);
    } finally {
      await this.connection.quit().catch(() => undefined);
    }
  }

  /** The callback did not succeed: closing the connection puts the results back to ready. */
  async giveBack(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.connection.destroy().catch(() => undefined);
  }
}

/**
 * Reserves every result in the results tube on `connection` (opened for this), ordered by member;
 * rejects with FlowStepError, giving them back, when some member's result is missing.
 */
export async function collectResults(connection: Beanstalk, meta: ChordResultsMeta): Promise<CollectedResults> {
  const byMember = new Map<number, unknown>();
  const ids: string[] = [];
  try {
    await connection.watch(meta.tube);
    await connection.ignore('default');
    // Bounded: duplicates of a member that ran twice are few; a tube stuffed by someone else is not read for ever.
    while (ids.length < meta.members * 2 + 100) {
      const job = await connection.reserve(0);
      if (job === null) break;
      ids.push(job.id);
      const result = parseResult(job.body);
      if (result !== undefined && result.member < meta.members && !byMember.has(result.member)) byMember.set(result.member, result.value);
    }
  } catch (error) {
    await connection.destroy().catch(() => undefined);
    throw new FlowStepError(`could not read the group's results: ${(error as Error).message}`, { cause: error });
  }
  if (byMember.size < meta.members) {
    await connection.destroy().catch(() => undefined);
    throw new FlowStepError(
      `only ${byMember.size} of the group's ${meta.members} results are in ${meta.tube}; the others were deleted or never put`,
    );
  }
  return new CollectedResults(
    connection,
    Array.from({ length: meta.members }, (_, index) => byMember.get(index)),
    ids,
  );
}

function parseResult(body: Buffer): { member: number; value: unknown } | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { member?: unknown; value?: unknown };
    if (!Number.isSafeInteger(parsed.member) || (parsed.member as number) < 0) return undefined;
    return { member: parsed.member as number, value: parsed.value };
  } catch {
    return undefined;
  }
}
