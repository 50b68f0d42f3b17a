/**
 * Test harness: throwaway beanstalkd servers, and one-shot raw commands on the raw client
 * (./raw-client.ts).
 *
 * For the tests and the benchmark (bench/). Nothing here may import from src/: the raw helpers exist
 * precisely so that tests can bypass the project's validation (non-JSON bodies, hostile envelopes) and
 * check the server's view of a job independently of the code under test.
 *
 * beanstalkd has no authentication, so every server is bound to 127.0.0.1 and every raw connection
 * goes to 127.0.0.1 only.
 */
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseYaml, RawClient } from './raw-client.js';

const HOST = '127.0.0.1' as const;

/** How long a started server may take to accept its first connection. */
const READY_TIMEOUT_MS = 5_000;
/** Pause between readiness probes. */
const PROBE_INTERVAL_MS = 20;
/** A probe that gets no answer this fast is treated as "not ready yet" and retried. */
const PROBE_TIMEOUT_MS = 500;
/** Extra starts with a fresh port after losing a port race. */
const PORT_RACE_RETRIES = 3;
/** Raw helpers give up after this, so a command missing its CRLF fails the test instead of hanging it. */
const RAW_REPLY_TIMEOUT_MS = 5_000;
/** Enough of beanstalkd's stderr to explain a failed start, without growing without bound. */
const STDERR_LIMIT = 16 * 1024;
/** An apt-get install on a cold CI machine can be slow. */
const ENSURE_SCRIPT_TIMEOUT_MS = 10 * 60_000;

const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-beanstalkd.sh', import.meta.url));

/** A beanstalkd process started by {@link startBeanstalkd}. */
export interface BeanstalkdServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `"127.0.0.1:PORT"`. */
  readonly url: string;
  readonly pid: number;
  readonly binlogDir: string | undefined;
  /**
   * Sends `signal` (default SIGTERM) and resolves once the process has exited. Safe to call more
   * than once or after the process died on its own; a later call with another signal still sends it,
   * so a test can escalate from SIGTERM to SIGKILL.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Options for {@link startBeanstalkd}. */
export interface StartOptions {
  /** Binlog directory (`-b DIR`), for durability and restart tests. */
  binlogDir?: string;
  /** A fixed port, e.g. to restart a server where clients expect it. Disables the port-race retry. */
  port?: number;
  /** Maximum job size in bytes (`-z N`). */
  maxJobSize?: number;
  /**
   * Passed to beanstalkd before the harness's own options, so `-l` and `-p` here cannot move the
   * server off 127.0.0.1 or off the port the harness reports.
   */
  extraArgs?: string[];
}

type ServerChild = ChildProcessByStdio<null, null, Readable>;

/** Raised when beanstalkd could not bind its port; only this failure is worth a retry. */
class PortInUseError extends Error {}

let binaryPromise: Promise<string> | undefined;

/**
 * Resolves the beanstalkd binary once per test process, because the script may run apt-get and
 * every test would otherwise pay for it. A failure is cached as well: trying again in the same run
 * would only repeat a slow install that already failed.
 *
 * @returns the binary path printed by scripts/ensure-beanstalkd.sh
 * @throws Error carrying the script's stderr (which says how to install beanstalkd) if none is usable
 */
export async function findBeanstalkd(): Promise<string> {
  binaryPromise ??= new Promise<string>((resolve, reject) => {
    // Run through bash so a checkout that lost the executable bit still works.
    execFile(
      'bash',
      [ENSURE_SCRIPT],
      { encoding: 'utf8', timeout: ENSURE_SCRIPT_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        const path = stdout.trim().split('\n').pop()?.trim() ?? '';
        if (error || path === '') {
          const detail = stderr.trim() || (error ? error.message : 'ensure-beanstalkd.sh printed no path');
          reject(new Error(`beanstalkd is not available: ${detail}`));
          return;
        }
        resolve(path);
      },
    );
  });
  return binaryPromise;
}

/**
 * Asks the kernel for a currently free port on 127.0.0.1. The port is released before returning,
 * so another process can take it first; {@link startBeanstalkd} copes with that race.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port: 0, exclusive: true }, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') {
    throw new Error('could not read the port of a temporary listener');
  }
  return address.port;
}

const running = new Set<ServerChild>();
let exitHookInstalled = false;

/**
 * Children are unref'd so a test that forgets stop() cannot keep the test process alive forever;
 * this hook then makes sure such a server dies with the process instead of lingering.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      if (child.pid === undefined) continue;
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone: nothing left to clean up.
      }
    }
  });
}

/**
 * Starts a private beanstalkd on 127.0.0.1 and resolves once it answers, so tests never race
 * the server's startup.
 *
 * Readiness means "a `stats` reply names our pid": a bare TCP connect could succeed against some
 * other process that grabbed the port between {@link freePort} and the bind.
 *
 * @throws if beanstalkd is missing, exits during startup (message has its exit code and stderr),
 *   or does not answer within 5 s.
 */
export async function startBeanstalkd(options: StartOptions = {}): Promise<BeanstalkdServer> {
  validateOptions(options);
  const binary = await findBeanstalkd();
  installExitHook();

  const attempts = options.port === undefined ? 1 + PORT_RACE_RETRIES : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await launch(binary, port, options);
    } catch (error) {
      if (!(error instanceof PortInUseError)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

function validateOptions(options: StartOptions): void {
  const { port, maxJobSize } = options;
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65_535)) {
    throw new RangeError(`port must be an integer from 1 to 65535, got ${String(port)}`);
  }
  if (maxJobSize !== undefined && !(Number.isInteger(maxJobSize) && maxJobSize >= 1)) {
    throw new RangeError(`maxJobSize must be a positive integer, got ${String(maxJobSize)}`);
  }
}

async function launch(binary: string, port: number, options: StartOptions): Promise<BeanstalkdServer> {
  // beanstalkd lets a later option override an earlier one, so ours go last.
  const args = [...(options.extraArgs ?? []), '-l', HOST, '-p', String(port)];
  if (options.binlogDir !== undefined) args.push('-b', options.binlogDir);
  if (options.maxJobSize !== undefined) args.push('-z', String(options.maxJobSize));

  const child: ServerChild = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += chunk;
  });

  let spawnError: Error | undefined;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      resolve();
    });
  });
  // 'close' comes after stderr has been fully read, which a startup error message needs.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const failedToSpawn = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve();
    });
  });

  if (child.pid !== undefined) running.add(child);

  const describeExit = (): string => {
    const how = exitInfo?.signal ? `signal ${exitInfo.signal}` : `code ${String(exitInfo?.code)}`;
    const text = stderr.trim();
    return `beanstalkd (${binary} ${args.join(' ')}) exited during startup with ${how}${text ? `: ${text}` : ''}`;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined) {
      throw new Error(`could not spawn beanstalkd (${binary}): ${spawnError.message}`);
    }
    if (exitInfo !== undefined) {
      await Promise.race([closed, sleep(200)]);
      const message = describeExit();
      if (/address already in use/i.test(stderr)) throw new PortInUseError(message);
      throw new Error(message);
    }
    if (child.pid !== undefined && (await probe(port, child.pid))) break;
    if (Date.now() >= deadline) {
      child.kill('SIGKILL');
      await Promise.race([exited, failedToSpawn]);
      throw new Error(
        `beanstalkd on ${HOST}:${port} did not answer within ${READY_TIMEOUT_MS} ms${stderr.trim() ? `: ${stderr.trim()}` : ''}`,
      );
    }
    await sleep(PROBE_INTERVAL_MS);
  }

  const pid = child.pid as number;
  child.unref();
  (child.stderr as Readable & Partial<Pick<Socket, 'unref'>>).unref?.();

  const server: BeanstalkdServer = {
    host: HOST,
    port,
    url: `${HOST}:${port}`,
    pid,
    binlogDir: options.binlogDir,
    async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (exitInfo !== undefined) return;
      // Keep the event loop alive until the exit event arrives, despite the unref above.
      child.ref();
      try {
        process.kill(pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
      await exited;
    },
  };
  return Object.freeze(server);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True only if the server on `port` answers `stats` with our child's pid. */
async function probe(port: number, pid: number): Promise<boolean> {
  let client: RawClient | undefined;
  try {
    client = await RawClient.connect(port, PROBE_TIMEOUT_MS);
    const reply = await client.requestWithin('stats\r\n', PROBE_TIMEOUT_MS);
    return reply.line.startsWith('OK ') && parseYaml(reply.body).pid === String(pid);
  } catch {
    return false;
  } finally {
    client?.close();
  }
}

/**
 * Accepts `"127.0.0.1:PORT"` (what {@link BeanstalkdServer.url} gives) and also
 * `"beanstalk://127.0.0.1:PORT"`, and refuses any other host so tests can only reach local servers.
 */
function portFromUrl(url: string): number {
  const match = /^(?:beanstalkd?:\/\/)?([^:/]+):(\d{1,5})\/?$/.exec(url);
  const host = match?.[1];
  const port = Number(match?.[2]);
  if (host !== HOST || !(Number.isInteger(port) && port >= 1 && port <= 65_535)) {
    throw new TypeError(`expected "${HOST}:PORT", got ${JSON.stringify(url)}`);
  }
  return port;
}

async function withConnection<T>(url: string, use: (client: RawClient) => Promise<T>): Promise<T> {
  const client = await RawClient.connect(portFromUrl(url), RAW_REPLY_TIMEOUT_MS);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/** One command's reply as text, as the server sent it: the line, CRLF, and the body and CRLF if any. */
async function requestText(client: RawClient, command: string | Buffer): Promise<string> {
  const reply = await client.requestWithin(command, RAW_REPLY_TIMEOUT_MS);
  return reply.body === undefined ? `${reply.line}\r\n` : `${reply.line}\r\n${reply.body.toString('utf8')}\r\n`;
}

/**
 * Sends raw bytes exactly as given, so tests can reproduce malformed or hostile input that the
 * project's client would refuse to send. The command must carry its own `\r\n`.
 *
 * @returns the first complete reply, including its CRLF and, for `OK`/`RESERVED`/`FOUND`, the body
 *   and its trailing CRLF. Replies to any further pipelined commands are discarded.
 */
export async function rawCommand(url: string, command: string | Buffer): Promise<string> {
  return withConnection(url, (client) => requestText(client, command));
}

/**
 * Puts a job without any validation of the body (non-JSON, hostile envelopes, odd encodings).
 * `use` is confirmed before `put` is written, so a bad tube name cannot leave a body to be parsed
 * as a command.
 *
 * @param opts priority defaults to 1024, delay to 0, ttr to 60
 * @returns the new job id
 * @throws Error whose message is the server's reply line if the job was not inserted
 */
export async function rawPut(
  url: string,
  tube: string,
  body: Buffer | string,
  opts: { priority?: number; delay?: number; ttr?: number } = {},
): Promise<string> {
  const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const { priority = 1024, delay = 0, ttr = 60 } = opts;
  return withConnection(url, async (client) => {
    const using = (await client.requestWithin(`use ${tube}\r\n`, RAW_REPLY_TIMEOUT_MS)).line;
    if (using !== `USING ${tube}`) throw new Error(using);
    const header = Buffer.from(`put ${priority} ${delay} ${ttr} ${payload.length}\r\n`, 'latin1');
    const reply = (await client.requestWithin(Buffer.concat([header, payload, Buffer.from('\r\n')]), RAW_REPLY_TIMEOUT_MS)).line;
    const inserted = /^INSERTED (\d+)$/.exec(reply);
    if (inserted?.[1] === undefined) throw new Error(reply);
    return inserted[1];
  });
}

async function rawStats(url: string, command: string): Promise<Record<string, string> | null> {
  const reply = await withConnection(url, (client) => client.requestWithin(command, RAW_REPLY_TIMEOUT_MS));
  if (reply.line === 'NOT_FOUND') return null;
  if (!reply.line.startsWith('OK ')) throw new Error(reply.line);
  return parseYaml(reply.body);
}

/**
 * The server's own view of a job (state, tube, counters), independent of the code under test.
 *
 * @returns every field as a string, e.g. `{ state: 'ready', tube: 'emails', reserves: '0', ... }`,
 *   or null if the job does not exist
 */
export async function rawStatsJob(url: string, id: string): Promise<Record<string, string> | null> {
  return rawStats(url, `stats-job ${id}\r\n`);
}

/**
 * The server's counters for a tube.
 *
 * @returns every field as a string, e.g. `{ name: 'emails', 'current-jobs-ready': '1', ... }`,
 *   or null if the tube does not exist (beanstalkd drops tubes nobody uses or watches and that hold no jobs)
 */
export async function rawStatsTube(url: string, tube: string): Promise<Record<string, string> | null> {
  return rawStats(url, `stats-tube ${tube}\r\n`);
}

/** The body of job `id` (by `peek`), as text; null when there is no such job. */
export async function rawPeekBody(url: string, id: string): Promise<string | null> {
  const reply = await rawCommand(url, `peek ${id}\r\n`);
  if (!reply.startsWith('FOUND ')) return null;
  const start = reply.indexOf('\r\n') + 2;
  return reply.slice(start, reply.length - 2);
}
