/**
 * The producer's body-size curve (`npm run bench -- --only sizes`; not in the default run): at 100 B,
 * 1 KB, 8 KB, 32 KB and 60 KB of kwargs, arrays of records and one long string, putMany and put() in
 * flight each divided by the raw client's pipelined put of the same bytes, measured next to it; the
 * encoder's cost next to JSON.stringify's; and putMany's peak memory in a process of its own.
 */
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger, encodeEnvelope, JobQueue } from '../../src/index.js';
import { pipelineDeletes, pipelinePuts, putCommand, RawClient } from '../../test/helpers/raw-client.js';
import { type BenchContext, freshTube, REPO, type Sample, type Scenario, type ScenarioGroup, sample } from '../context.js';
import { type TargetResult, target } from '../report.js';
import { kwargsOf, SHAPES, type Shape, SIZE_CURVE } from '../shapes.js';
import { median } from '../stats.js';
import { PUT_WINDOW } from './raw.js';

/** Scenario names, by shape and size label. */
export const SIZES = Object.freeze({
  raw: (shape: Shape, size: string) => `sizes-raw-put-${shape}-${size}`,
  floor: (shape: Shape, size: string) => `sizes-floor-put-${shape}-${size}`,
  putMany: (shape: Shape, size: string) => `sizes-put-many-${shape}-${size}`,
  inFlight: (shape: Shape, size: string) => `sizes-put-in-flight-${shape}-${size}`,
  encode: (shape: Shape, size: string) => `sizes-encode-${shape}-${size}`,
  memory: 'sizes-put-many-memory',
});

/** Bytes of bodies per run: enough jobs to time at every size, few enough that 60 KB runs stay short. */
const BYTES_PER_RUN = 32 * 2 ** 20;
/** The fewest jobs a run times, whatever the size. */
const MIN_JOBS = 500;
/** The memory probe's batch: 3,000 jobs of 60 KB of records (~185 MB of bodies). */
const MEMORY_JOBS = 3_000;
/** How long each encode figure is timed per run, in rounds that alternate encoder and JSON.stringify. */
const ENCODE_ROUNDS = 15;
const ENCODE_ROUND_MS = 10;

/** The sizes group. Nothing is built until a scenario runs: the group costs nothing when not selected. */
export async function sizesGroup(ctx: BenchContext): Promise<ScenarioGroup> {
  const tube = freshTube('sizes');
  const rawTube = freshTube('sizes-raw');
  const queue = new JobQueue({ url: ctx.url, logger: createLogger({ level: 'silent' }) });
  const task = queue.task(tube)(async function benchSizes(_kw: Record<string, unknown>) {});
  let clients: Promise<{ producer: RawClient; cleaner: RawClient }> | undefined;
  const raw = (): Promise<{ producer: RawClient; cleaner: RawClient }> => {
    clients ??= (async () => {
      const [producer, cleaner] = await Promise.all([RawClient.connect(ctx.port), RawClient.connect(ctx.port)]);
      await producer.expect(`use ${rawTube}\r\n`, 'USING');
      return { producer, cleaner };
    })();
    return clients;
  };
  const timed = async (count: number, put: () => Promise<string[]>): Promise<Sample> => {
    const start = performance.now();
    const ids = await put();
    const elapsed = performance.now() - start;
    if (ids.length !== count) throw new Error(`expected ${count} job ids, got ${ids.length}`);
    await pipelineDeletes((await raw()).cleaner, ids);
    return sample(count, elapsed);
  };

  const scenarios: Scenario[] = [];
  for (const shape of SHAPES) {
    for (const { label, bytes } of SIZE_CURVE) {
      const kwargs = kwargsOf(shape, bytes);
      // The bytes bsworker puts; the raw client puts the very same body.
      const body = encodeEnvelope('benchSizes', tube, kwargs);
      const count = Math.min(ctx.sizes.jobs, Math.max(MIN_JOBS, Math.floor(BYTES_PER_RUN / body.length)));
      const list = (): Record<string, unknown>[] => Array.from({ length: count }, () => kwargs);
      const inFlight = (n: number): Promise<string[]> => Promise.all(Array.from({ length: n }, () => task.put(kwargs)));
      const what = `${shape === 'records' ? 'records' : 'one string'}, ${body.length.toLocaleString('en-US')}-byte bodies`;
      const rawName = SIZES.raw(shape, label);
      scenarios.push(
        {
          name: rawName,
          group: 'sizes',
          label: `raw put, pipelined (${PUT_WINDOW} in flight): ${what}`,
          baseline: rawName,
          note: `${count.toLocaleString('en-US')} jobs per run`,
          run: async () => {
            const { producer } = await raw();
            return timed(count, () => pipelinePuts(producer, putCommand(body), count, PUT_WINDOW));
          },
        },
        {
          // What no producer that writes JSON can beat: the raw client, JSON.stringify-ing each job's
          // envelope (no checks) before it puts it.
          name: SIZES.floor(shape, label),
          group: 'sizes',
          label: `floor: raw pipelined put + JSON.stringify of each envelope: ${what}`,
          baseline: rawName,
          measuredWith: rawName,
          run: async () => {
            const { producer } = await raw();
            const stringified = (): Buffer => putCommand(Buffer.from(JSON.stringify({ func_name: 'benchSizes', tube, kwargs }), 'utf8'));
            return timed(count, () => pipelinePuts(producer, stringified, count, PUT_WINDOW));
          },
        },
        {
          name: SIZES.putMany(shape, label),
          group: 'sizes',
          label: `bsworker putMany: ${what}`,
          baseline: rawName,
          warmup: async () => pipelineDeletes((await raw()).cleaner, await task.putMany(list().slice(0, 200))),
          run: () => timed(count, () => task.putMany(list())),
        },
        {
          name: SIZES.inFlight(shape, label),
          group: 'sizes',
          label: `bsworker put(), all in flight: ${what}`,
          baseline: rawName,
          warmup: async () => pipelineDeletes((await raw()).cleaner, await inFlight(200)),
          run: () => timed(count, () => inFlight(count)),
        },
        {
          name: SIZES.encode(shape, label),
          group: 'sizes',
          label: `encodeEnvelope, in-process: ${what}`,
          baseline: SIZES.encode(shape, label),
          note: 'jobs/s = bodies encoded per second; compared with Buffer.from(JSON.stringify(envelope)) and a bare JSON.stringify(kwargs), in alternating rounds',
          run: async () => encodeSample(tube, kwargs),
        },
      );
    }
  }
  scenarios.push({
    name: SIZES.memory,
    group: 'sizes',
    label: `bsworker putMany peak memory: ${Math.min(MEMORY_JOBS, ctx.sizes.jobs).toLocaleString('en-US')} jobs of 60 KB (records), a process of its own`,
    baseline: SIZES.memory,
    note: 'jobs/s of that one batch; peak is the kernel maxRSS, start is RSS once connected',
    run: () => memorySample(ctx, Math.min(MEMORY_JOBS, ctx.sizes.jobs)),
  });

  return {
    scenarios,
    close: async () => {
      if (clients) {
        const { producer, cleaner } = await clients;
        producer.close();
        cleaner.close();
      }
      await queue.close();
    },
  };
}

/** Times the encoder against JSON.stringify on the same kwargs, in alternating rounds (medians). */
function encodeSample(tube: string, kwargs: Record<string, unknown>): Sample {
  const envelope = { func_name: 'benchSizes', tube, kwargs };
  const variants = {
    encode: () => encodeEnvelope('benchSizes', tube, kwargs),
    stringify: () => Buffer.from(JSON.stringify(envelope), 'utf8'),
    bare: () => JSON.stringify(kwargs),
  };
  const perCallUs: Record<keyof typeof variants, number[]> = { encode: [], stringify: [], bare: [] };
  let encoded = 0;
  let encodeMs = 0;
  for (let round = 0; round < ENCODE_ROUNDS; round += 1) {
    for (const [name, run] of Object.entries(variants) as [keyof typeof variants, () => unknown][]) {
      let calls = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < ENCODE_ROUND_MS) {
        for (let i = 0; i < 16; i += 1) run();
        calls += 16;
        elapsed = performance.now() - start;
      }
      perCallUs[name].push((elapsed * 1000) / calls);
      if (name === 'encode') {
        encoded += calls;
        encodeMs += elapsed;
      }
    }
  }
  const encodeUs = median(perCallUs.encode);
  const stringifyUs = median(perCallUs.stringify);
  const bareUs = median(perCallUs.bare);
  return sample(encoded, encodeMs, {
    encodeUs,
    stringifyUs,
    bareStringifyUs: bareUs,
    encodeOverStringify: encodeUs / stringifyUs,
    encodeOverBareStringify: encodeUs / bareUs,
  });
}

/** Runs bench/put-many-memory.ts in a child and reads its one JSON line. */
async function memorySample(ctx: BenchContext, jobs: number): Promise<Sample> {
  const out = join(ctx.tmpDir, `put-many-memory-${Date.now()}.json`);
  const fd = openSync(out, 'w');
  try {
    const child = ctx.children.spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'bench', 'put-many-memory.ts'), String(ctx.port), String(jobs), 'records', '61440'],
      { cwd: REPO, stdio: ['ignore', fd, 'pipe'] },
    );
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`put-many-memory exited with ${exit.code ?? exit.signal}: ${child.stderr()}`);
  } finally {
    closeSync(fd);
  }
  const { peakRssMb, startRssMb, seconds } = JSON.parse(await readFile(out, 'utf8')) as Record<string, number>;
  return sample(jobs, (seconds as number) * 1000, { peakRssMb: peakRssMb as number, startRssMb: startRssMb as number });
}

/** The targets on the curve, from this run's medians. */
export function sizeTargets(figure: (name: string, field?: string) => number | undefined): TargetResult[] {
  const ratio = (top: number | undefined, bottom: number | undefined): number | undefined =>
    top === undefined || bottom === undefined ? undefined : top / bottom;
  const worst = (shape: Shape): { value: number | undefined; at: string } => {
    let found: { value: number | undefined; at: string } = { value: undefined, at: 'n/a' };
    for (const { label } of SIZE_CURVE) {
      const value = figure(SIZES.encode(shape, label), 'encodeOverStringify');
      if (value !== undefined && (found.value === undefined || value > found.value)) found = { value, at: label };
    }
    return found;
  };
  const putMany = (label: string): TargetResult =>
    target(
      `putMany / raw pipelined put at ${label} (records)`,
      ratio(figure(SIZES.putMany('records', label)), figure(SIZES.raw('records', label))),
      '>=',
      label === '8KB' ? 0.6 : 0.5,
      `${SIZES.putMany('records', label)} / ${SIZES.raw('records', label)}; floor (raw + JSON.stringify of each envelope) / raw = ${ratio(figure(SIZES.floor('records', label)), figure(SIZES.raw('records', label)))?.toFixed(2) ?? 'n/a'}`,
    );
  // Not run (the default run leaves the curve out): no rows of n/a.
  if (figure(SIZES.raw('records', '8KB')) === undefined && figure(SIZES.encode('records', '8KB')) === undefined) return [];
  return [
    ...SHAPES.map((shape) => {
      const { value, at } = worst(shape);
      return target(
        `encodeEnvelope / Buffer.from(JSON.stringify(envelope)), worst size (${shape})`,
        value,
        '<=',
        1.3,
        `at ${at}; see each sizes-encode row for the ratio to a bare JSON.stringify(kwargs)`,
      );
    }),
    putMany('8KB'),
    putMany('60KB'),
  ];
}

/** The figures of a sizes row worth printing, for the table's details column. */
export function sizeDetails(medians: Readonly<Record<string, number>>): string[] {
  const parts: string[] = [];
  if (medians.encodeOverStringify !== undefined) {
    parts.push(
      `${(medians.encodeUs ?? Number.NaN).toFixed(2)} us; ${medians.encodeOverStringify.toFixed(2)} x Buffer.from(JSON.stringify(envelope)) (${(medians.stringifyUs ?? Number.NaN).toFixed(2)} us), ${(medians.encodeOverBareStringify ?? Number.NaN).toFixed(2)} x JSON.stringify(kwargs) (${(medians.bareStringifyUs ?? Number.NaN).toFixed(2)} us)`,
    );
  }
  if (medians.peakRssMb !== undefined) {
    parts.push(`peak RSS ${medians.peakRssMb.toFixed(1)} MB (${(medians.startRssMb ?? Number.NaN).toFixed(1)} MB once connected)`);
  }
  return parts;
}
