/**
 * The CLI's one way to hear "stop": SIGTERM and SIGINT, counted together, so that every command reads
 * the first as "stop gracefully" and a later one as "stop now" the same way.
 */

/** Options of {@link listenForStopSignals}. */
export interface StopSignalOptions {
  /** Signals to leave uncounted (a supervised child ignores the group's Ctrl-C; see run-worker). */
  readonly ignore?: (signal: NodeJS.Signals) => boolean;
}

/**
 * Calls `handle` with each SIGTERM or SIGINT and how many have come so far (1 for the first). Returns
 * the function that stops listening.
 */
export function listenForStopSignals(handle: (signal: NodeJS.Signals, nth: number) => void, options: StopSignalOptions = {}): () => void {
  let count = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (options.ignore?.(signal)) return;
    count += 1;
    handle(signal, count);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
