/**
 * One producer process of the `producers` group (bench/scenarios/producers.ts): an application process
 * that puts jobs one at a time, each awaited, as a web request handler would. It is either bsworker (a
 * JobQueue and a task's `put()`) or the raw client putting the same bytes, so the parent can divide
 * one by the other with the same number of processes.
 *
 *   node --import tsx bench/producer-process.ts <raw|bsworker> <port> <tube> <jobs per run>
 *
 * The parent drives it with lines on stdin, and it answers on stdout:
 * - at start it connects, puts and deletes a warm-up batch (untimed), then prints `ready`;
 * - `go`: puts its jobs, then prints `{"jobs":N,"cpuUs":U}` (CPU of this process during the puts);
 * - `clean`: deletes the jobs of the last run (untimed, so that every run puts into an empty tube),
 *   then prints `cleaned`;
 * - end of stdin: closes its connections and exits.
 */
import { createInterface } from 'node:readline';
import { createLogger, JobQueue } from '../src/index.js';
import { insertedId, pipelineDeletes, putCommand, RawClient } from '../test/helpers/raw-client.js';
import { envelopeBody, KWARGS } from './payload.js';

/** The task name both kinds put under: the raw client's body is the one this task's put() writes. */
const TASK = 'benchProducerProcess';
const WARMUP_JOBS = 500;

const [kind, portText, tube, jobsText] = process.argv.slice(2);
const port = Number(portText);
const jobs = Number(jobsText);
if ((kind !== 'raw' && kind !== 'bsworker') || !Number.isInteger(port) || tube === undefined || !Number.isInteger(jobs) || jobs < 1) {
  process.stderr.write('usage: producer-process.ts <raw|bsworker> <port> <tube> <jobs per run>\n');
  process.exit(2);
}

/** Puts one job and resolves to its id. */
type PutOne = () => Promise<string>;

/** Opens what `kind` puts with; `close` ends it. */
async function openProducer(): Promise<{ putOne: PutOne; close: () => Promise<void> }> {
  if (kind === 'raw') {
    const client = await RawClient.connect(port);
    await client.expect(`use ${tube}\r\n`, 'USING');
    const command = putCommand(envelopeBody(tube as string, TASK));
    return {
      putOne: async () => insertedId(await client.request(command)),
      close: async () => client.close(),
    };
  }
  // Silent: a producer logs only when the server is unreachable, and stdout is the parent's channel.
  const queue = new JobQueue({ url: `127.0.0.1:${port}`, logger: createLogger({ level: 'silent' }) });
  const task = queue.task(tube as string)(async function benchProducerProcess(_kw: typeof KWARGS) {});
  return { putOne: () => task.put(KWARGS), close: () => queue.close() };
}

async function putMany(putOne: PutOne, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) ids.push(await putOne());
  return ids;
}

async function main(): Promise<void> {
  const producer = await openProducer();
  const cleaner = await RawClient.connect(port);
  await pipelineDeletes(cleaner, await putMany(producer.putOne, Math.min(WARMUP_JOBS, jobs)));
  process.stdout.write('ready\n');
  let last: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'go') {
      const before = process.cpuUsage();
      last = await putMany(producer.putOne, jobs);
      const cpu = process.cpuUsage(before);
      process.stdout.write(`${JSON.stringify({ jobs: last.length, cpuUs: cpu.user + cpu.system })}\n`);
    } else if (line === 'clean') {
      await pipelineDeletes(cleaner, last);
      last = [];
      process.stdout.write('cleaned\n');
    }
  }
  await producer.close();
  cleaner.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`producer-process: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
