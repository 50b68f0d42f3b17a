/**
 * Auto-kick (the original design's `kick_period`): every period, kick the buried jobs of each watched
 * tube, so failures are retried automatically until the kick bound deletes them (or dead-letters them).
 */
import { kickBuried } from '../beanstalk/kick-buried.js';
import type { LazyConnection } from '../beanstalk/lazy-connection.js';
import type { Logger } from '../logging/logger.js';

/** Options of {@link startAutoKick}. */
export interface AutoKickOptions {
  readonly control: LazyConnection;
  readonly tubes: readonly string[];
  readonly periodSeconds: number;
  readonly logger: Logger;
}

/** Starts kicking; resolves the returned function once the timer is off and any round in flight is done. */
export function startAutoKick(options: AutoKickOptions): () => Promise<void> {
  let round: Promise<void> | undefined;
  const timer = setInterval(() => {
    // A slow round (a server in trouble) is never overlapped by the next.
    round ??= kickRound(options).finally(() => {
      round = undefined;
    });
  }, options.periodSeconds * 1000);
  return async () => {
    clearInterval(timer);
    await round;
  };
}

async function kickRound({ control, tubes, logger }: AutoKickOptions): Promise<void> {
  try {
    const connection = await control.get();
    for (const tube of tubes) {
      const result = await kickBuried(connection, tube);
      if (result) logger.info({ tube, kicked: result.kicked }, `auto-kick: kicked ${result.kicked} buried job(s)`);
    }
  } catch (error) {
    logger.warn({ err: error }, 'auto-kick failed; trying again next period');
  }
}
