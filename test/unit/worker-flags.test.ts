// The worker flags table: commander's options, the children's arguments and the Worker's options all
// come from it, so a flag given to a supervisor reaches each child as the same value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command, Option } from 'commander';
import pino from 'pino';
import { buildProgram } from '../../src/cli/program.js';
import {
  addWorkerFlags,
  checkRequiredFlags,
  childArgs,
  type FlagSpec,
  WORKER_FLAG_NAMES,
  WORKER_FLAGS,
  type WorkerFlagName,
  type WorkerFlagValues,
  workerOptionsFrom,
} from '../../src/cli/worker-flags.js';
import { validateWorkerOptions, type WorkerOptions } from '../../src/worker/options.js';

const silent = pino({ level: 'silent' });

/** A value for every flag, none of them its default. The type makes a new flag need one. */
const SAMPLES: { readonly [K in WorkerFlagName]-?: NonNullable<WorkerFlagValues[K]> } = {
  tubes: ['emails', 'reports'],
  jobs: 'dist/jobs',
  url: '127.0.0.1:11301',
  concurrency: 4,
  threads: 2,
  maxKicks: 5,
  kickPeriod: 60,
  deadLetter: 'dead_letters',
  failureRecords: false,
  graceMs: 5_000,
  logLevel: 'trace',
  connectTimeout: 30,
  redact: ['password', 'token'],
  healthFile: '/tmp/bsworker-health',
  metricsPort: 9464,
  metricsHost: '0.0.0.0',
  metricsIpc: true,
  scheduler: true,
  processes: 4,
  maxJobsPerChild: 100,
  maxMemoryPerChild: 512,
  maxJobs: 7,
  maxMemoryMb: 256,
};

/** The smallest options the command runs with: the required flag and the defaults. */
const BASE: WorkerFlagValues = {
  tubes: ['emails'],
  jobs: './jobs',
  maxKicks: 3,
  graceMs: 30_000,
  logLevel: 'info',
  failureRecords: true,
  metricsHost: '127.0.0.1',
};

/** Parses `args` as a child does: the same commander options, from the same table. */
function parseAsChild(args: readonly string[]): Record<string, unknown> {
  const command = addWorkerFlags(new Command('child'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  command.parse([...args], { from: 'user' });
  return command.opts();
}

/** Commander's attribute name for a spelling: `maxJobs` for `--max-jobs`. */
const attribute = (flags: string): string => new Option(flags).attributeName();

const childOf = (name: WorkerFlagName): FlagSpec<unknown>['child'] => WORKER_FLAGS[name].child;

describe('worker flags table', () => {
  it("keys each flag by commander's own name for it, so the parsed options are the table's", () => {
    for (const name of WORKER_FLAG_NAMES) assert.equal(attribute(WORKER_FLAGS[name].flags), name);
  });

  it('a flag typed as always there has a default or is required', () => {
    for (const name of WORKER_FLAG_NAMES) {
      const spec = WORKER_FLAGS[name];
      if (!('present' in spec)) continue;
      const negated = spec.flags.startsWith('--no-');
      assert.ok(spec.required === true || negated || spec.default?.() !== undefined, `${name} is always there`);
    }
    // And the required ones are the ones BASE needs beyond the defaults.
    assert.deepEqual(
      WORKER_FLAG_NAMES.filter((name) => WORKER_FLAGS[name].required),
      ['tubes'],
    );
  });

  it('commander gives the defaults the table says', () => {
    const parsed = parseAsChild(['--tubes', 'emails']);
    assert.deepEqual({ ...parsed, logLevel: BASE.logLevel }, { ...BASE, logLevel: BASE.logLevel });
  });

  for (const name of WORKER_FLAG_NAMES) {
    it(`${name}: reaches each child as the same value, or not at all when the supervisor keeps it`, () => {
      const sample = SAMPLES[name];
      const options = { ...BASE, [name]: sample };
      const args = childArgs(options);
      const parsed = parseAsChild(args);
      const child = childOf(name);
      if (child === 'same') assert.deepEqual(parsed[name], sample);
      else if ('as' in child) assert.deepEqual(parsed[attribute(child.as)], sample);
      else if ('marker' in child) assert.equal(parsed[attribute(child.marker)], true);
      else assert.deepEqual(args, childArgs(BASE), `${name} is not passed: ${child.never}`);
    });
  }

  it('every flag at once round-trips: what a child parses is what the supervisor was given', () => {
    const args = childArgs({ ...BASE, ...SAMPLES });
    const parsed = parseAsChild(args);
    for (const name of WORKER_FLAG_NAMES) {
      const child = childOf(name);
      if (child === 'same') assert.deepEqual(parsed[name], SAMPLES[name], name);
      else if ('as' in child) assert.deepEqual(parsed[attribute(child.as)], SAMPLES[name], name);
      else if ('marker' in child) assert.equal(parsed[attribute(child.marker)], true, name);
    }
    assert.ok(!args.includes('--processes') && !args.includes('--health-file') && !args.includes('--metrics-port'));
  });

  it('maps each flag onto the Worker option it names, and the Worker accepts them all', () => {
    const options = { ...BASE, ...SAMPLES };
    const worker = workerOptionsFrom(options, silent);
    for (const name of WORKER_FLAG_NAMES) {
      const target = WORKER_FLAGS[name].worker;
      if (typeof target === 'string') assert.deepEqual(worker[target as keyof WorkerOptions], SAMPLES[name], name);
    }
    assert.equal(worker.threads?.size, SAMPLES.threads);
    assert.ok(worker.threads?.jobsDir.endsWith('/dist/jobs') && worker.threads.jobsDir.startsWith('/'), 'an absolute jobs directory');
    assert.equal(worker.logger, silent);
    const resolved = validateWorkerOptions(worker);
    assert.equal(resolved.kickPeriodSeconds, SAMPLES.kickPeriod);
    assert.equal(resolved.deadLetterTube, SAMPLES.deadLetter);
  });

  it('refuses a missing required flag with its spelling, as commander would name it', () => {
    assert.deepEqual(checkRequiredFlags({ ...BASE, tubes: undefined }), { missing: '-t, --tubes <tubes>' });
    assert.deepEqual(checkRequiredFlags(BASE), { options: BASE });
  });

  it("the program's help lists every flag that is not hidden, with its help text", () => {
    let help = '';
    const program = buildProgram({ print: () => undefined, exit: () => undefined, printError: () => undefined });
    program.configureOutput({ writeOut: (text) => (help += text) });
    program.outputHelp();
    const flat = help.replace(/\s+/g, ' ');
    for (const name of WORKER_FLAG_NAMES) {
      const { flags, description, hidden } = WORKER_FLAGS[name];
      assert.equal(flat.includes(`${flags} `), hidden !== true, `${flags} in the help`);
      if (hidden !== true) assert.ok(flat.includes(description), `${name}'s help text`);
    }
  });

  it('TypeScript refuses a flag that maps onto a Worker option of another type, or says nothing of it', () => {
    // @ts-expect-error a number cannot become the dead-letter tube's name
    const wrongType: FlagSpec<number> = { flags: '--x <n>', description: 'x', child: 'same', worker: 'deadLetterTube' };
    // @ts-expect-error a flag must say what it becomes, even when that is nothing (null)
    const unmapped: FlagSpec<number> = { flags: '--x <n>', description: 'x', child: 'same' };
    // @ts-expect-error a flag must say whether it reaches the children
    const unpassed: FlagSpec<number> = { flags: '--x <n>', description: 'x', worker: 'concurrency' };
    assert.ok(wrongType && unmapped && unpassed);
  });
});
