/**
 * `npm run demo`: the whole loop with real parts. It starts a private beanstalkd on a free loopback port
 * (binlog in a temporary directory), runs the real `bsworker` CLI over ./jobs, puts the example jobs,
 * shows what happens to each, handles the failing one with `bsworker buried` and `bsworker kick` until
 * the kick bound deletes it, then stops everything.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
// The same throwaway-server helper the integration tests use.
import { type BeanstalkdServer, startBeanstalkd } from '../test/helpers/beanstalkd.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'bsworker');
const MAX_KICKS = 2;
const TUBES = 'task_tube_one,emails,flaky';
const color = process.stdout.isTTY ? (code: number, text: string) => `\u001b[${code}m${text}\u001b[0m` : (_: number, text: string) => text;
const say = (text = ''): void => console.log(text);
const step = (text: string): void => say(`\n${color(1, text)}`);

type LogLine = {
  msg?: string;
  jobId?: string;
  buriedAs?: string;
  task?: string;
  err?: { message?: string };
  kicks?: number;
  body?: string;
  durationMs?: number;
};

/** Follows the worker's JSON log lines and lets the demo wait for a given event. */
class WorkerLog {
  readonly #lines: LogLine[] = [];
  readonly #waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  constructor(child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.#lines.push(line);
      for (const waiter of [...this.#waiters]) {
        if (waiter.match(line)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    });
  }

  /** The next line (already seen or still to come, counting from `after`) matching `match`. */
  waitFor(match: (line: LogLine) => boolean, after = 0, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.#lines.slice(after).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the worker did not report in time')), timeoutMs);
      this.#waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  get length(): number {
    return this.#lines.length;
  }
}

const outcome = (jobId: string) => (line: LogLine) =>
  line.jobId === jobId && typeof line.msg === 'string' && /^job (completed|buried|failed)/.test(line.msg);

function describeOutcome(line: LogLine): string {
  if (line.msg === 'job completed') return color(32, `completed in ${line.durationMs} ms, deleted`);
  if (line.msg === 'job failed; buried')
    return color(
      33,
      `failed (${line.err?.message}), buried with its failure record as job ${line.buriedAs ?? line.jobId}; kicked ${line.kicks ?? 0} time(s) so far`,
    );
  if (line.msg?.startsWith('job buried')) return color(33, line.msg);
  const body = String(line.body);
  const excerpt = body.length > 120 ? `${body.slice(0, 120)}… (${body.length} characters, its failure history included)` : body;
  return color(31, `failed after ${line.kicks} kicks: deleted, body logged at error level: ${excerpt}`);
}

async function cli(...args: string[]): Promise<void> {
  say(color(2, `$ bsworker ${args.join(' ')}`));
  const { stdout } = await promisify(execFile)(process.execPath, [bin, ...args]);
  for (const line of stdout.trimEnd().split('\n')) say(`  ${line}`);
}

async function main(): Promise<void> {
  const binlog = await mkdtemp(join(tmpdir(), 'bsworker-demo-'));
  let server: BeanstalkdServer | undefined;
  let worker: ChildProcessWithoutNullStreams | undefined;
  try {
    server = await startBeanstalkd({ binlogDir: binlog });
    process.env.BEANSTALKD_URL = server.url;
    say(color(1, 'bsworker demo'));
    say(`beanstalkd on ${server.url} (pid ${server.pid}, binlog in ${binlog})`);

    step(`1. Start a worker: bsworker --tubes ${TUBES} --max-kicks ${MAX_KICKS}`);
    worker = spawn(process.execPath, [bin, '--tubes', TUBES, '--max-kicks', String(MAX_KICKS), '--url', server.url], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    worker.stderr.pipe(process.stderr);
    const log = new WorkerLog(worker);
    await log.waitFor((line) => line.msg === 'worker started');
    say('worker started, watching its three tubes');

    step('2. Put the example jobs');
    // Imported only now, so their JobQueue reads BEANSTALKD_URL from above.
    const { taskOne } = await import('../jobs/task-one.js');
    const { Emails } = await import('../jobs/emails.js');
    const { chargeCard } = await import('../jobs/flaky.js');
    const { queue } = await import('../jobs/queue.js');
    const jobs: [string, Promise<string>][] = [
      ["taskOne.put({ a: 'hello', times: 3 })", taskOne.put({ a: 'hello', times: 3 })],
      [
        "queue.put(Emails.welcome, { to: 'ann@example.com', name: 'Ann' })",
        queue.put(Emails.welcome, { to: 'ann@example.com', name: 'Ann' }),
      ],
      [
        "queue.put(Emails.welcome, { to: 'not-an-address', name: 'Bob' })",
        queue.put(Emails.welcome, { to: 'not-an-address', name: 'Bob' }),
      ],
      ['chargeCard.put({ orderId: 1001, cents: 4999 })', chargeCard.put({ orderId: 1001, cents: 4999 })],
    ];
    const ids: string[] = [];
    for (const [call, put] of jobs) {
      const id = await put;
      ids.push(id);
      say(`${call.padEnd(72)} -> job ${id}`);
    }
    say(`and inline, without a worker: taskOne({ a: 'hi', times: 2 }) = ${await taskOne({ a: 'hi', times: 2 })}`);

    step('3. What the worker did with each');
    for (const id of ids) {
      const line = await log.waitFor(outcome(id));
      say(`job ${id} ${line.task}: ${describeOutcome(line)}`);
    }

    step('4. Handle the failed payment from the shell');
    // Each bury keeps the failure record in a copy with a new id: follow the job from copy to copy.
    let payment = (await log.waitFor(outcome(ids[3] as string))).buriedAs ?? (ids[3] as string);
    await cli('buried', '--tube', 'flaky');
    for (let kick = 1; kick <= MAX_KICKS; kick += 1) {
      const mark = log.length;
      await cli('kick', '--tube', 'flaky');
      const line = await log.waitFor(outcome(payment), mark);
      say(`job ${payment} ran again: ${describeOutcome(line)}`);
      payment = line.buriedAs ?? payment;
    }
    say(`after ${MAX_KICKS} kicks the next failure deleted it (--max-kicks ${MAX_KICKS}); the bad email stays buried:`);
    await cli('buried', '--tube', 'emails');

    step('5. Stop the worker with SIGTERM');
    const exited = new Promise<number | null>((resolve) => worker?.once('exit', (code) => resolve(code)));
    worker.kill('SIGTERM');
    say(`worker exited with code ${await exited}`);
    await queue.close();
  } finally {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await server?.stop();
    await rm(binlog, { recursive: true, force: true });
  }
  say('\nbeanstalkd stopped, temporary binlog removed. Done.');
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
