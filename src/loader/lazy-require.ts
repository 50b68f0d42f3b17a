/**
 * Loads a CommonJS dependency the first time it is needed. The worker process never draws a table, a
 * progress bar or pretty log lines, and the memory those libraries take at start counts against it.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A function that returns module `specifier`, required on the first call and remembered after. */
export function lazyRequire<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(specifier) as T;
    return loaded;
  };
}
