// Wrong kwargs must fail to compile. tsc checks the fixture against the built package's .d.ts files:
// it must pass with its @ts-expect-error markers (an unused marker is itself an error), and with the
// markers stripped every marked line must be an error, so a marker can never hide a line that compiles.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const fixtures = join(root, 'test', 'types', 'fixtures');
/** Each fixture, and the fewest wrong cases it may keep. */
const FIXTURES: readonly (readonly [string, number])[] = [
  ['kwargs.ts', 9],
  ['schema.ts', 10],
  ['flows.ts', 6],
];

async function compile(project: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [tsc, '-p', project], { cwd: root });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string };
    return { code: failed.code ?? 1, output: failed.stdout ?? '' };
  }
}

describe('kwargs types', () => {
  it('compiles the fixtures, every @ts-expect-error being used', async () => {
    const { code, output } = await compile(join(root, 'test', 'types', 'tsconfig.json'));
    assert.equal(code, 0, output);
  });

  for (const [name, minimum] of FIXTURES) {
    it(`reports an error on each marked line of ${name} once the markers are removed`, async () => {
      const source = await readFile(join(fixtures, name), 'utf8');
      const lines = source.split('\n');
      const expected = lines.flatMap((line, i) => (/^\s*\/\/ @ts-expect-error/.test(line) ? [i + 2] : []));
      assert.ok(expected.length >= minimum, `${name} keeps its wrong-kwargs cases`);

      // Inside the repo, so `import ... from 'bsworker'` resolves to this package.
      const dir = await mkdtemp(join(root, 'test', 'types', 'stripped-'));
      try {
        await writeFile(join(dir, name), lines.map((line) => line.replace(/^(\s*)\/\/ @ts-expect-error.*/, '$1')).join('\n'));
        await writeFile(
          join(dir, 'tsconfig.json'),
          JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { rootDir: '.' }, include: [name] }),
        );
        const { code, output } = await compile(join(dir, 'tsconfig.json'));
        assert.notEqual(code, 0);
        const pattern = new RegExp(`${name.replace('.', '\\.')}\\((\\d+),\\d+\\): error`, 'g');
        const errorLines = [...output.matchAll(pattern)].map((match) => Number(match[1]));
        assert.deepEqual(
          [...new Set(errorLines)].sort((a, b) => a - b),
          expected,
          output,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
