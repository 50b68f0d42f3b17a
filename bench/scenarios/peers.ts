/**
 * Peers, measured in the same run: fivebeans' own bundled worker draining the same number of
 * same-sized jobs (against bsworker at -c 1), and a naive producer that opens a connection per put, as
 * the original Python design's Putter does (against bsworker's put awaited one at a time).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { insertedId, pipelineDeletes, putCommand, RawClient } from '../../test/helpers/raw-client.js';
import { childEnv } from '../children.js';
import { type BenchContext, freshTube, REPO, type Sample, type ScenarioGroup, sample } from '../context.js';
import { measureDrain } from '../measure-drain.js';
import { envelopeBody, fivebeansBody } from '../payload.js';
import { DRAIN } from './drain.js';
import { RAW } from './raw.js';

const FIVEBEANS_WORKER = join(REPO, 'bench', 'peers', 'fivebeans-worker.ts');

/** Scenario names the report refers to. */
export const PEERS = Object.freeze({ fivebeansWorker: 'fivebeans-worker', naiveProducer: 'naive-producer' });

/** The peer scenarios. */
export function peersGroup(ctx: BenchContext): ScenarioGroup {
  const { singleWorkerJobs, naiveJobs } = ctx.sizes;
  return {
    scenarios: [
      {
        name: PEERS.fivebeansWorker,
        group: 'peers',
        label: "fivebeans' bundled worker (1 connection, no logging)",
        baseline: RAW.reserveDelete,
        // Its target divides bsworker's -c 1 drain by this one: both bound by round trips, so measured back to back.
        measuredWith: DRAIN.single(1),
        note: `${singleWorkerJobs.toLocaleString('en-US')} jobs per run, bodies {type, payload} padded to the envelope's size`,
        run: () => {
          const tube = freshTube('fivebeans');
          return measureDrain(ctx, {
            command: process.execPath,
            args: ['--import', 'tsx', FIVEBEANS_WORKER, String(ctx.port), tube],
            cwd: REPO,
            env: childEnv({}),
            tube,
            body: fivebeansBody(envelopeBody(tube).length),
            jobs: singleWorkerJobs,
            waiting: 1,
            logFile: join(ctx.tmpDir, `${tube}.log`),
          });
        },
      },
      {
        name: PEERS.naiveProducer,
        group: 'peers',
        label: 'naive producer: connect, use, put, quit per job',
        baseline: RAW.putOneAtATime,
        note: `${naiveJobs.toLocaleString('en-US')} jobs per run`,
        run: () => naiveProducerRun(ctx, naiveJobs),
      },
    ],
    close: async () => undefined,
  };
}

/** One connection per put, awaited one after the other; the jobs are deleted afterwards, untimed. */
async function naiveProducerRun(ctx: BenchContext, jobs: number): Promise<Sample> {
  const tube = freshTube('naive');
  const put = putCommand(envelopeBody(tube));
  const ids: string[] = [];
  const start = performance.now();
  for (let i = 0; i < jobs; i += 1) {
    const client = await RawClient.connect(ctx.port);
    await client.expect(`use ${tube}\r\n`, 'USING');
    ids.push(insertedId(await client.request(put)));
    // Like a Python client's close(): `quit` and go, without waiting for the server to hang up.
    client.quit();
  }
  const elapsed = performance.now() - start;
  const cleaner = await RawClient.connect(ctx.port);
  try {
    await pipelineDeletes(cleaner, ids);
  } finally {
    cleaner.close();
  }
  return sample(jobs, elapsed);
}
