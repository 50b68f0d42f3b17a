/**
 * prom-client, loaded the first time a metric is made. Every job module imports bsworker, so anything
 * bsworker loads at import a producer pays too: prom-client costs about 12 MB of memory and some start
 * time, and most processes never make a metric. Only types are imported statically elsewhere.
 */
import type * as PromClient from 'prom-client';
import { lazyRequire } from '../loader/lazy-require.js';

/** The prom-client module: required on the first call, remembered after. */
export const promClient: () => typeof PromClient = lazyRequire<typeof PromClient>('prom-client');
