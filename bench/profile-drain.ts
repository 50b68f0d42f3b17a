/**
 * Profiling aid, not part of `npm run bench`: `node --import tsx bench/profile-drain.ts <shape> <bytes>
 * <jobs> <profile-dir>` starts a private beanstalkd, prefills a tube with jobs of that size, and runs
 * one bsworker `-c 16` under `node --cpu-prof` until the tube is drained; the .cpuprofile lands in
 * <profile-dir>. `PROFILE_FLAGS` replaces the Node flags (`--trace-gc`: the GC trace goes to the
 * worker's log file there).
 */
import { join } from 'node:path';
import { encodeEnvelope } from '../src/index.js';
import { startBeanstalkd } from '../test/helpers/beanstalkd.js';
import { Children, childEnv } from './children.js';
import { type BenchContext, freshTube, REPO } from './context.js';
import { measureDrain } from './measure-drain.js';
import { NOOP_TASK } from './payload.js';
import { kwargsOf, type Shape } from './shapes.js';

const [shape = 'records', bytes = '8192', jobs = '20000', dir = '/tmp/prof'] = process.argv.slice(2);
const server = await startBeanstalkd();
const children = new Children();
try {
  const ctx: BenchContext = {
    port: server.port,
    url: server.url,
    sizes: { jobs: 0, oneAtATimeJobs: 0, naiveJobs: 0, singleWorkerJobs: 0, latencySamples: 0 },
    tmpDir: dir,
    children,
    progress: () => undefined,
  };
  const tube = freshTube('profile');
  const kwargs = kwargsOf(shape as Shape, Number(bytes));
  const result = await measureDrain(ctx, {
    command: process.execPath,
    args: [
      ...(process.env.PROFILE_FLAGS ?? `--cpu-prof --cpu-prof-dir=${dir}`).split(' ').filter(Boolean),
      join(REPO, 'bin', 'bsworker'),
      '--tubes',
      tube,
      '--jobs',
      join(REPO, 'bench', 'jobs'),
      '--url',
      server.url,
      '-c',
      '16',
    ],
    cwd: REPO,
    env: childEnv({ BSWORKER_BENCH_TUBE: tube }),
    tube,
    body: encodeEnvelope(NOOP_TASK, tube, kwargs),
    jobs: Number(jobs),
    warmJobs: Math.min(Number(jobs), 2000),
    waiting: 1,
    logFile: join(dir, `${tube}.log`),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await children.stopAll();
  await server.stop();
}
