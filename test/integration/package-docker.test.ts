// The Docker files, read the way Docker would (there is no Docker engine to build them here): what the
// image copies and leaves out, its base, and the worker's healthcheck, whose command is run here for
// real against a fresh, a stale and a missing health file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
// js-yaml has no types installed, and this file needs only its load().
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

/** One Dockerfile instruction: its keyword and the rest of its (joined) lines. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Instructions grouped by stage, each stage starting at its FROM. */
async function dockerfileStages(path: string): Promise<Instruction[][]> {
  const text = (await readFile(path, 'utf8')).replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const keyword = trimmed.split(/\s/, 1)[0] ?? '';
    const instruction = { keyword: keyword.toUpperCase(), args: trimmed.slice(keyword.length).trim() };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

/** The sources of a COPY (everything but its options and its destination). */
function copySources(args: string): string[] {
  const words = args.split(/\s+/).filter((word) => !word.startsWith('--'));
  return words.slice(0, -1);
}

/** The Node major of a `FROM node:<major>-...` line. */
function nodeMajor(from: Instruction): number {
  const match = /^node:(\d+)-/.exec(from.args);
  assert.ok(match, `FROM ${from.args}: expected an official node image with a major version`);
  return Number(match[1]);
}

/** The JSON array form of a Dockerfile instruction (`CMD ["a", "b"]`), which never involves a shell. */
function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(parsed) && parsed.every((word) => typeof word === 'string'), `not an exec form: ${args}`);
  return parsed;
}

function run(argv: string[]): Promise<number> {
  const [file = '', ...args] = argv;
  // `node` in the container is the node running these tests here.
  return new Promise((resolve) => {
    execFile(file === 'node' ? process.execPath : file, args, { timeout: 10_000 }, (error) =>
      resolve(typeof error?.code === 'number' ? error.code : error ? -1 : 0),
    );
  });
}

describe('the Docker files', () => {
  let temp: string;

  before(async () => {
    temp = await mkdtemp(join(tmpdir(), 'bsworker-docker-'));
  });

  after(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  /**
   * Runs a healthcheck command with its health file moved to a temporary path: healthy (0) only while
   * the file is fresh.
   */
  async function assertChecksFreshness(argv: string[], healthFile: string): Promise<void> {
    const file = join(temp, `alive-${Math.random().toString(36).slice(2)}`);
    const local = argv.map((word) => word.replaceAll(healthFile, file));
    assert.notDeepEqual(local, argv, `the healthcheck does not read ${healthFile}`);
    assert.equal(await run(local), 1, 'healthy without a health file');
    await writeFile(file, `${new Date().toISOString()}\n`);
    assert.equal(await run(local), 0, 'unhealthy with a fresh health file');
    const stale = new Date(Date.now() - 60_000);
    await utimes(file, stale, stale);
    assert.equal(await run(local), 1, 'healthy with a health file a minute old');
  }

  it('keeps test/, bench/ and scripts/ out of the build context and of the image', async () => {
    const ignored = (await readFile(join(REPO, '.dockerignore'), 'utf8')).split('\n').map((line) => line.trim());
    for (const dir of ['test', 'bench', 'scripts', 'node_modules', '.git']) assert.ok(ignored.includes(dir), `.dockerignore lacks ${dir}`);

    const stages = await dockerfileStages(join(REPO, 'Dockerfile'));
    const final = stages.at(-1) ?? [];
    for (const { keyword, args } of final.filter((step) => step.keyword === 'COPY' || step.keyword === 'ADD')) {
      if (args.includes('--from=')) continue;
      for (const source of copySources(args)) {
        assert.doesNotMatch(source, /^\.\/?$|^(test|bench|scripts|src)\b/, `${keyword} ${args} puts ${source} in the image`);
      }
    }
    // Every source the Dockerfile copies exists, and .dockerignore does not hide it from the build.
    for (const step of stages.flat().filter((s) => s.keyword === 'COPY' && !s.args.includes('--from='))) {
      for (const source of copySources(step.args)) {
        await access(join(REPO, source));
        assert.ok(!ignored.includes(source.replace(/\/$/, '')), `COPY ${source}, but .dockerignore excludes it`);
      }
    }
  });

  it('installs with vendor/ (the bundled fivebeans workspace) in place, in every stage', async () => {
    for (const stage of await dockerfileStages(join(REPO, 'Dockerfile'))) {
      const ci = stage.findIndex((step) => step.keyword === 'RUN' && /\bnpm ci\b/.test(step.args));
      if (ci === -1) continue;
      const vendor = stage.findIndex((step) => step.keyword === 'COPY' && copySources(step.args).includes('vendor'));
      assert.ok(vendor !== -1 && vendor < ci, `stage ${stage[0]?.args}: npm ci runs before vendor/ is copied`);
    }
  });

  it('bases both images on one maintained Node line that package.json supports, not Node 20', async () => {
    const engines = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    assert.match(engines, />=22\.12/);
    const repoStages = await dockerfileStages(join(REPO, 'Dockerfile'));
    const exampleStages = await dockerfileStages(join(REPO, 'examples', 'docker', 'Dockerfile'));
    const majors = new Set([...repoStages, ...exampleStages].map((stage) => nodeMajor(stage[0] as Instruction)));
    assert.equal(majors.size, 1, `different Node lines: ${[...majors].join(', ')}`);
    const [major] = majors;
    assert.ok(major !== undefined && major >= 22, `node:${major} is not a line bsworker supports`);
  });

  it('gives the image a default command: the CLI, showing its help', async () => {
    const final = (await dockerfileStages(join(REPO, 'Dockerfile'))).at(-1) ?? [];
    const entrypoint = final.find((step) => step.keyword === 'ENTRYPOINT');
    const cmd = final.find((step) => step.keyword === 'CMD');
    assert.deepEqual(execForm(entrypoint?.args ?? 'null'), ['node', 'bin/bsworker']);
    assert.deepEqual(execForm(cmd?.args ?? 'null'), ['--help']);
  });

  it('compose runs the worker with --health-file and a healthcheck on that file being fresh', async () => {
    const compose = yaml.load(await readFile(join(REPO, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { command?: string[]; healthcheck?: { test?: string[] }; ports?: string[] }>;
    };
    const worker = compose.services.worker;
    assert.ok(worker?.command, 'the worker service has no command');
    const at = worker.command.indexOf('--health-file');
    assert.ok(at !== -1, `the worker runs without --health-file: ${worker.command.join(' ')}`);
    const healthFile = worker.command[at + 1] as string;
    const test = worker.healthcheck?.test ?? [];
    assert.equal(test[0], 'CMD', 'the healthcheck should be an exec form, not a shell');
    await assertChecksFreshness(test.slice(1), healthFile);
    // beanstalkd has no authentication: published on the host's loopback only.
    for (const port of compose.services.beanstalkd?.ports ?? []) assert.match(port, /^127\.0\.0\.1:/);
  });

  it('compose has a cluster profile: three servers on loopback ports and workers over all three', async () => {
    const compose = yaml.load(await readFile(join(REPO, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { command?: string[]; profiles?: string[]; ports?: string[]; healthcheck?: { test?: string[] } }>;
    };
    const names = ['beanstalkd-1', 'beanstalkd-2', 'beanstalkd-3'];
    for (const [i, name] of names.entries()) {
      const service = compose.services[name];
      assert.deepEqual(service?.profiles, ['cluster'], name);
      assert.deepEqual(service?.ports, [`127.0.0.1:1130${i + 1}:11300`], name);
      assert.ok(service?.healthcheck?.test?.length, `${name} has the healthcheck of the single server`);
    }
    const worker = compose.services['cluster-worker'];
    assert.deepEqual(worker?.profiles, ['cluster']);
    const command = worker?.command ?? [];
    assert.equal(command[command.indexOf('--url') + 1], names.map((name) => `beanstalk://${name}:11300`).join(','));
    assert.ok(command.includes('--health-file'));
  });

  it('has an example Dockerfile for a user project, with a README and the same healthcheck', async () => {
    await access(join(REPO, 'examples', 'docker', 'README.md'));
    const final = (await dockerfileStages(join(REPO, 'examples', 'docker', 'Dockerfile'))).at(-1) ?? [];
    const cmd = execForm(final.find((step) => step.keyword === 'CMD')?.args ?? 'null');
    const at = cmd.indexOf('--health-file');
    assert.ok(at !== -1, `the example's CMD runs without --health-file: ${cmd.join(' ')}`);
    const healthcheck = final.find((step) => step.keyword === 'HEALTHCHECK')?.args ?? '';
    const argv = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4));
    await assertChecksFreshness(argv, cmd[at + 1] as string);
    assert.deepEqual(execForm(final.find((step) => step.keyword === 'ENTRYPOINT')?.args ?? 'null'), [
      'node',
      'node_modules/bsworker/bin/bsworker',
    ]);
  });
});
