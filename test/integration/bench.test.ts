// The benchmark as a smoke test: `bench/run.ts --quick` into a temporary directory must exit 0 and write
// a complete JSON document and an SVG chart. No timing is asserted: figures on a shared test machine
// mean nothing, and the bench's own table is where they are read.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** --quick takes seconds; the bound is generous for a busy 2-core machine running other tests. */
const BENCH_TIMEOUT_MS = 120_000;

/** Every scenario the bench reports, by the name its JSON uses. */
const SCENARIOS = [
  'raw-put-pipelined',
  'raw-put-one-at-a-time',
  'raw-reserve-delete-pipelined',
  'raw-latency',
  'producer-put-one-at-a-time',
  'producer-put-in-flight',
  'producer-put-many',
  'worker-drain-c1',
  'worker-drain-c4',
  'worker-drain-c16',
  'worker-drain-c64',
  'worker-drain-p2-c16',
  'worker-drain-3servers-c16',
  'worker-drain-c16-metrics',
  'worker-latency',
  'fivebeans-worker',
  'naive-producer',
];

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The test runner's own settings must not reach the bench (NODE_OPTIONS could preload tsx twice). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'BEANSTALKD_URL', 'LOG_LEVEL', 'BSWORKER_INLINE']) delete env[name];
  return env;
}

function runBench(out: string, extra: readonly string[] = []): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'bench', 'run.ts'), '--quick', '--out', out, ...extra],
      { cwd: REPO, env: childEnv(), timeout: BENCH_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // Not an exit code: it could not start, or the timeout killed it.
          reject(new Error(`bench/run.ts --quick failed: ${error.message}\n${stdout}\n${stderr}`));
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

describe('npm run bench -- --quick', { timeout: BENCH_TIMEOUT_MS + 10_000 }, () => {
  let out: string;
  let result: Result;

  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'bsworker-bench-test-'));
    result = await runBench(out);
  });

  after(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('exits 0 and prints the table with the targets', () => {
    assert.equal(result.code, 0, `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
    assert.match(result.stdout, /jobs\/s/);
    assert.match(result.stdout, /pass|MISS/);
  });

  it('writes every scenario with a positive, finite median jobs/s', async () => {
    const json = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
      machine: Record<string, unknown>;
      quick: boolean;
      runs: number;
      scenarios: Record<string, { jobsPerSecond?: unknown; samples?: unknown[] }>;
    };
    assert.equal(json.quick, true);
    assert.equal(typeof json.machine.beanstalkd, 'string');
    assert.deepEqual(Object.keys(json.scenarios).sort(), [...SCENARIOS].sort());
    for (const name of SCENARIOS) {
      const scenario = json.scenarios[name];
      const value = scenario?.jobsPerSecond;
      assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${name}: jobsPerSecond is ${String(value)}`);
      assert.equal(scenario?.samples?.length, json.runs, `${name}: one sample per run`);
    }
  });

  it('lists the ratios with their targets', async () => {
    const json = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
      ratios: { figure: unknown; value: unknown; target: unknown; pass: unknown }[];
    };
    assert.equal(json.ratios.length, 13);
    for (const ratio of json.ratios) {
      assert.equal(typeof ratio.figure, 'string');
      assert.match(String(ratio.target), /^(>=|<=) \d+(\.\d+)?$/);
      // RSS is read from /proc: elsewhere the figure is reported as not measured.
      if (process.platform !== 'linux' && /RSS|CPU/.test(String(ratio.figure))) continue;
      assert.ok(typeof ratio.value === 'number' && Number.isFinite(ratio.value), `${String(ratio.figure)}: value ${String(ratio.value)}`);
      assert.equal(typeof ratio.pass, 'boolean');
    }
  });

  it('draws the throughput chart', async () => {
    const svg = await readFile(join(out, 'throughput.svg'), 'utf8');
    assert.ok(svg.startsWith('<svg'), `the chart starts with ${JSON.stringify(svg.slice(0, 40))}`);
    assert.match(svg, /<\/svg>\s*$/);
  });
});

describe('npm run bench -- --quick --only producers', { timeout: BENCH_TIMEOUT_MS + 10_000 }, () => {
  it('drives its producer processes through a run and reports each pair with its CPU per put', async () => {
    const out = await mkdtemp(join(tmpdir(), 'bsworker-bench-producers-'));
    try {
      const result = await runBench(out, ['--only', 'producers']);
      assert.equal(result.code, 0, `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
      const json = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
        scenarios: Record<string, { jobsPerSecond?: unknown; cpuUsPerJob?: unknown }>;
      };
      // --quick runs one and two processes of each kind.
      const names = ['producers-raw-1', 'producers-bsworker-1', 'producers-raw-2', 'producers-bsworker-2'];
      assert.deepEqual(Object.keys(json.scenarios).sort(), [...names].sort());
      for (const name of names) {
        const { jobsPerSecond, cpuUsPerJob } = json.scenarios[name] ?? {};
        assert.ok(typeof jobsPerSecond === 'number' && jobsPerSecond > 0, `${name}: jobsPerSecond is ${String(jobsPerSecond)}`);
        assert.ok(typeof cpuUsPerJob === 'number' && cpuUsPerJob > 0, `${name}: cpuUsPerJob is ${String(cpuUsPerJob)}`);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe('npm run bench -- --quick --only flows', { timeout: BENCH_TIMEOUT_MS + 10_000 }, () => {
  it('runs results, chains and groups beside their plain baselines through one worker', async () => {
    const out = await mkdtemp(join(tmpdir(), 'bsworker-bench-flows-'));
    try {
      const result = await runBench(out, ['--only', 'flows']);
      assert.equal(result.code, 0, `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
      const json = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as {
        scenarios: Record<string, { jobsPerSecond?: unknown; ratioToBaseline?: unknown }>;
      };
      const names = [
        'flows-plain-drain',
        'flows-results',
        'flows-plain-roundtrip',
        'flows-result-roundtrip',
        'flows-singles',
        'flows-chains',
        'flows-group-plain',
        'flows-group-callback',
        'flows-group-collect',
      ];
      assert.deepEqual(Object.keys(json.scenarios).sort(), [...names].sort());
      for (const name of names) {
        const { jobsPerSecond, ratioToBaseline } = json.scenarios[name] ?? {};
        assert.ok(typeof jobsPerSecond === 'number' && jobsPerSecond > 0, `${name}: jobsPerSecond is ${String(jobsPerSecond)}`);
        assert.ok(typeof ratioToBaseline === 'number' && ratioToBaseline > 0, `${name}: ratioToBaseline is ${String(ratioToBaseline)}`);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
