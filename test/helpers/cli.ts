// Spawning the real `bsworker` binary in tests: its JSON log lines as they arrive, bounded waits for
// lines and exits, and copies of the fixture jobs directory whose tasks the tests put jobs for.
import assert from 'node:assert/strict';
import { type ChildProcess, type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(REPO, 'bin', 'bsworker');
export const DIST_INDEX = join(REPO, 'dist', 'index.js');
/** A generous bound for one CLI start-to-exit on a busy 2-core machine; a hang fails instead of waiting forever. */
export const EXIT_TIMEOUT_MS = 10_000;
export const LINE_TIMEOUT_MS = 10_000;

/** One JSON log line of a child. */
export type LogLine = Record<string, unknown>;
/** How a child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Tube prefixes are per test, so no two tests ever share a tube on the shared server. */
export const prefix = (name = 'cli'): string => `${name}-${randomUUID().slice(0, 8)}`;
/** A job body in the envelope format. */
export const envelope = (funcName: string, tube: string, kwargs: Record<string, unknown>): string =>
  JSON.stringify({ func_name: funcName, tube, kwargs });

/**
 * The environment of a child: the test runner's own settings (NODE_OPTIONS could preload tsx and hide a
 * loader bug; a stray BEANSTALKD_URL or LOG_LEVEL would change what is tested) are removed.
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'BEANSTALKD_URL', 'LOG_LEVEL', 'BSWORKER_INLINE']) delete env[name];
  return { ...env, ...extra };
}

/** Every child still running, for an `after` hook to kill. */
export const children = new Set<Cli>();

/** One spawned `bsworker`, with its stdout parsed into JSON log lines as they arrive. */
export class Cli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  #partial = '';
  readonly #listeners = new Set<() => void>();

  /** `detached` puts the child in a process group of its own, for {@link Cli.signalGroup}. */
  constructor(args: string[], env: Record<string, string> = {}, options: { readonly detached?: boolean } = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: childEnv(env), detached: options.detached === true });
    children.add(this);
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.stdout += chunk;
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop() ?? '';
      for (const part of parts) {
        if (!part.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          // Not a log line (help text, a fixture's stray output): kept in `stdout` only.
        }
      }
      this.#notify();
    });
    this.child.stderr.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit') so that stdout and stderr have been read to the end.
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        children.delete(this);
        this.#notify();
        resolve(this.exit);
      });
    });
  }

  /** Resolves with the first log line that matches; rejects on timeout or if the child exits first. */
  waitForLine(match: (line: LogLine) => boolean, what: string, timeoutMs = LINE_TIMEOUT_MS): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match);
        if (found) finish(() => resolve(found));
        else if (this.exit)
          finish(() => reject(new Error(`bsworker exited (${describeExit(this.exit)}) before logging ${what}${this.#dump()}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no log line ${what} within ${timeoutMs} ms${this.#dump()}`))),
        timeoutMs,
      );
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Resolves with the exit; rejects if the child is still running after `timeoutMs`. */
  async waitForExit(timeoutMs = EXIT_TIMEOUT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`bsworker still running after ${timeoutMs} ms${this.#dump()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    assert.ok(this.child.pid !== undefined && !this.exit, 'bsworker is not running');
    process.kill(this.child.pid, signal);
  }

  /** Signals the child's whole process group, as a terminal's Ctrl-C does. Needs `detached`. */
  signalGroup(signal: NodeJS.Signals): void {
    assert.ok(this.child.pid !== undefined && !this.exit, 'bsworker is not running');
    process.kill(-this.child.pid, signal);
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #dump(): string {
    return `\n--- stdout ---\n${this.stdout.slice(-4_000)}\n--- stderr ---\n${this.stderr.slice(-2_000)}`;
  }
}

/** `signal SIGKILL` or `code 1`. */
export function describeExit(exit: Exit | undefined): string {
  return exit?.signal ? `signal ${exit.signal}` : `code ${String(exit?.code)}`;
}

/** Runs a one-shot command to its end. */
export async function run(args: string[], env: Record<string, string> = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = new Cli(args, env);
  const exit = await cli.waitForExit();
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
}

/**
 * Polls the server until `check` passes. Only for the server's state, which has no event to await; the
 * bound is far below any TTR in these tests, so passing here means "at once", not "after the TTR".
 */
export async function eventually(check: () => Promise<void>, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The fixture jobs modules, real files type-checked with the rest of the tests. */
export const FIXTURE_JOBS = join(REPO, 'test', 'fixtures', 'cli-jobs');

/**
 * Copies the fixture jobs directory into `dir` (created if missing) as a small project of its own: a
 * package.json that makes it ESM, as a typical project is (a separate test covers a .ts module outside
 * one), and `node_modules/bsworker` linked to this repo, so the fixtures' `import ... from 'bsworker'`
 * resolves through the package's exports map as a user's install would, in `--processes` children and
 * under the tsx loader alike. The link is a symlink, so Node loads the same dist/ as the spawned CLI.
 * The loader skips node_modules, so the link adds no job modules. `typescript: false` leaves out
 * typed.ts, whose presence makes every child register tsx and only slows the starts down.
 */
export async function writeFixtureJobs(dir: string, options: { readonly typescript?: boolean } = {}): Promise<void> {
  await mkdir(join(dir, 'node_modules'), { recursive: true });
  for (const name of await readdir(FIXTURE_JOBS)) {
    if (name === 'typed.ts' && options.typescript === false) continue;
    await copyFile(join(FIXTURE_JOBS, name), join(dir, name));
  }
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  await symlink(REPO, join(dir, 'node_modules', 'bsworker'), 'dir');
}

/** Resolves once `text()` passes `check` (tested at each chunk of `stream`); fails with what was seen after `timeoutMs`. */
export function waitForText(
  stream: NodeJS.ReadableStream,
  text: () => string,
  check: (text: string) => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const test = (): void => {
      if (!check(text())) return;
      finish();
      resolve();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`no ${what} within ${timeoutMs} ms; output so far:\n${JSON.stringify(text().slice(-3_000))}`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      stream.off('data', test);
    };
    stream.on('data', test);
    test();
  });
}

/** Quotes one word for `sh -c`. */
const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `bsworker ARGS` under a pseudo-terminal with util-linux `script`. Missing `script` is a failure,
 * not a skip: a skipped terminal test would let a broken live view pass CI unnoticed.
 */
export function underPty(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  try {
    execFileSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' });
  } catch {
    assert.fail('util-linux `script` is required for the pseudo-terminal tests of `bsworker top` (apt-get install util-linux / bsdutils)');
  }
  // `exec`: no shell stays in the terminal's foreground group. A shell left waiting there gets the
  // Ctrl-C too, may die of it, and `script -e` then reports 130 whatever bsworker did.
  const command = `exec ${[process.execPath, BIN, ...args].map(shellQuote).join(' ')}`;
  // -e: exit with bsworker's code; the typescript file is /dev/null since the output is read from stdout.
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
    cwd: REPO,
    // `script` runs the command with $SHELL: pin a POSIX shell rather than whatever the CI user has.
    env: childEnv({ SHELL: '/bin/sh' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  void exited.then(() => clearTimeout(timer));
  return { child, output: () => output, exited };
}
