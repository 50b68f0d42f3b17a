/**
 * With wire.ts (its command pipeline), the only code in bsworker that talks to fivebeans. It turns fivebeans' callbacks into promises and
 * mends what fivebeans leaves open:
 * - fivebeans never calls pending callbacks when the socket closes, so this class keeps its own set of
 *   pending calls and rejects them all with {@link ConnectionError}: no promise ever hangs;
 * - fivebeans checks no argument, and a rejected `put` makes beanstalkd run the body as commands, so
 *   every argument is validated before anything is written;
 * - a `BAD_FORMAT`-like reply means the stream is out of step, so the connection is dropped.
 *
 * fivebeans opens the socket and sends the operator commands (watch, use, kick, peek-ready, stats...).
 * The reply reader and the six commands on a worker's and a producer's hot path (put, reserve, delete,
 * release, bury, touch) are ours: fivebeans builds each command with several buffer copies, reads
 * replies byte by byte, and keeps its reply handlers in an array it shifts, which together cost more
 * CPU per job than everything else in a worker (see the README's performance notes). So are `peek <id>`
 * and `stats-job`, which the admin layer's id scan sends by the thousand: fivebeans writes each command
 * to the socket on its own, ours go out many to a write (2.5x the rate, measured).
 */
import FiveBeansClient from 'fivebeans/lib/client.js';
import { formatAddress, type ServerAddress } from './address.js';
import { type ConnectOptions, RAW } from './commands.js';
import { ConnectionError } from './errors.js';
import { connectFailure, idOf, jobOf, nothing, toJobStats, toTubeStats } from './replies.js';
import type { Beanstalk, JobStats, PeekedJob, PutParams, ReservedJob, ServerStats, TubeStats } from './types.js';
import {
  assertBodySize,
  assertInteger,
  assertPriority,
  assertSeconds,
  assertTtr,
  assertTubeName,
  normaliseJobId,
  UINT32_MAX,
} from './validate.js';
import { CommandWire, MAX_IN_FLIGHT } from './wire.js';
import { parseYamlList, parseYamlMap, parseYamlStats } from './yaml.js';

export type { ConnectOptions };
export { MAX_IN_FLIGHT };

/** One beanstalkd connection with a promise API. Create it with {@link BeanstalkConnection.connect}. */
export class BeanstalkConnection implements Beanstalk {
  readonly address: ServerAddress;
  #maxJobSize = 65_535;
  #version = '';
  readonly #client: FiveBeansClient;
  readonly #wire: CommandWire;
  /** The tube in use once every `use` written so far has been answered; undefined when unknown. */
  #usedTube: string | undefined = 'default';
  /** An unanswered `use`: commands that depend on the tube in use wait for it (see putInTube). */
  #useGate: Promise<void> | undefined;

  private constructor(address: ServerAddress, client: FiveBeansClient, wire: CommandWire) {
    this.address = address;
    this.#client = client;
    this.#wire = wire;
  }

  /**
   * Opens a connection and reads the server's `max-job-size`. Rejects with a {@link ConnectionError}
   * that names the address (and how to start beanstalkd) when the server cannot be reached.
   */
  static async connect(address: ServerAddress, options: ConnectOptions = {}): Promise<BeanstalkConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const where = formatAddress(address);
    const client = new FiveBeansClient(address.host, address.port);
    const wire = new CommandWire(address, client, {
      commandTimeoutMs: options.commandTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      unrefWhenIdle: options.unrefWhenIdle ?? false,
    });
    const connection = new BeanstalkConnection(address, client, wire);

    // An 'error' or 'close' ends the connection and rejects everything pending. Without an 'error'
    // listener, a refused connection would crash the process.
    client.on('error', (error: Error) => {
      wire.handleClose(new ConnectionError(where, `lost the connection to beanstalkd at ${where}: ${error.message}`, { cause: error }));
    });
    client.on('close', () => {
      wire.handleClose(new ConnectionError(where, `the connection to beanstalkd at ${where} closed`));
    });

    // One deadline covers the TCP handshake and the first reply: a peer that accepts connections but
    // never answers (not beanstalkd, or a hung one) must not hang start() or a put.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new ConnectionError(where, `could not connect to beanstalkd at ${where}: no answer within ${timeoutMs} ms`);
        wire.handleClose(error);
        client.stream?.destroy();
        reject(error);
      }, timeoutMs);
    });
    const opened = new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        client.removeListener('error', onEarlyError);
        resolve();
      };
      const onEarlyError = (error: NodeJS.ErrnoException): void => {
        client.removeListener('connect', onConnect);
        const failure = connectFailure(where, address, error);
        wire.handleClose(failure);
        reject(failure);
      };
      client.once('connect', onConnect);
      client.once('error', onEarlyError);
      client.connect();
      // Our reader replaces fivebeans' 'data' listener (added by connect()) for every reply.
      client.stream?.removeAllListeners('data');
      client.stream?.on('data', (chunk: Buffer) => wire.onData(chunk));
    });

    try {
      await Promise.race([opened, deadline]);
      // The server closing its side (it stopped or died) ends the connection at once, before a later
      // write would find out the hard way.
      client.stream?.once('end', () => {
        wire.handleClose(new ConnectionError(where, `beanstalkd at ${where} closed the connection`));
        client.stream?.destroy();
      });
      client.stream?.setNoDelay(true);
      client.stream?.setKeepAlive(true, 30_000);
      const stats = await Promise.race([connection.stats(), deadline]);
      const size = Number(stats['max-job-size']);
      if (Number.isInteger(size) && size > 0) connection.#maxJobSize = size;
      connection.#version = String(stats.version ?? '');
    } catch (error) {
      client.stream?.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }

  get maxJobSize(): number {
    return this.#maxJobSize;
  }

  get serverVersion(): string {
    return this.#version;
  }

  /** True once the connection can no longer be used: closed, or dropped and closing. */
  get isClosed(): boolean {
    return this.#wire.isClosed;
  }

  /** Resolves once the socket has closed. */
  get whenClosed(): Promise<void> {
    return this.#wire.whenClosed;
  }

  async put(body: Buffer, params: PutParams): Promise<string> {
    this.#checkPut(body, params);
    while (this.#useGate) await this.#useGate.catch(() => undefined);
    return this.#sendPut(body, params);
  }

  putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
    try {
      assertTubeName(tube);
      this.#checkPut(body, params);
    } catch (error) {
      return Promise.reject(error);
    }
    // Not async on purpose: a put into the tube already in use is the producer's hot path, and each
    // async layer is another trip through the microtask queue before the caller sees its id.
    if (this.#useGate === undefined && tube === this.#usedTube) return this.#sendPut(body, params);
    return this.#inTube(tube, () => this.#sendPut(body, params));
  }

  async use(tube: string): Promise<void> {
    assertTubeName(tube);
    await this.#inTube(tube, async () => undefined);
  }

  async watch(tube: string): Promise<number> {
    assertTubeName(tube);
    return Number(await this.#wire.call<string>('watch', undefined, (cb) => this.#client.watch(tube, cb)));
  }

  async ignore(tube: string): Promise<number> {
    assertTubeName(tube);
    return Number(await this.#wire.call<string>('ignore', undefined, (cb) => this.#client.ignore(tube, cb)));
  }

  reserve(timeoutSeconds: number): Promise<ReservedJob | null> {
    try {
      assertSeconds(timeoutSeconds, 'timeoutSeconds');
    } catch (error) {
      return Promise.reject(error);
    }
    this.#wire.quietFor(timeoutSeconds);
    // TIMED_OUT settles as null in the reply handler itself: no async layer here.
    return this.#wire.callRaw<ReservedJob | null>(
      'reserve-with-timeout',
      undefined,
      RAW.reserve,
      `reserve-with-timeout ${timeoutSeconds}\r\n`,
      jobOf,
    );
  }

  /**
   * `reserve-job <id>` (beanstalkd 1.12 and later): reserves a ready, delayed or buried job by id on this
   * connection; null when there is no such job (or it is reserved by someone else). Older servers answer
   * UNKNOWN_COMMAND, which costs the connection: check {@link serverVersion} first.
   */
  reserveJob(id: string): Promise<ReservedJob | null> {
    let jobId: string;
    try {
      jobId = normaliseJobId(id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#orNull(this.#wire.callRaw<ReservedJob | null>('reserve-job', jobId, RAW.reserve, `reserve-job ${jobId}\r\n`, jobOf));
  }

  async delete(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#wire.callRaw('delete', jobId, RAW.delete, `delete ${jobId}\r\n`, nothing);
  }

  async release(id: string, priority: number, delaySeconds: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    assertSeconds(delaySeconds, 'delaySeconds');
    await this.#wire.callRaw('release', jobId, RAW.release, `release ${jobId} ${priority} ${delaySeconds}\r\n`, nothing);
  }

  async bury(id: string, priority: number): Promise<void> {
    const jobId = normaliseJobId(id);
    assertPriority(priority);
    await this.#wire.callRaw('bury', jobId, RAW.bury, `bury ${jobId} ${priority}\r\n`, nothing);
  }

  async touch(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#wire.callRaw('touch', jobId, RAW.touch, `touch ${jobId}\r\n`, nothing);
  }

  async kick(bound: number): Promise<number> {
    assertInteger(bound, 'bound', 0, UINT32_MAX);
    return Number(await this.#wire.call<string>('kick', undefined, (cb) => this.#client.kick(bound, cb)));
  }

  async kickJob(id: string): Promise<void> {
    const jobId = normaliseJobId(id);
    await this.#wire.call('kick-job', jobId, (cb) => this.#client.kick_job(jobId, (err) => cb(err, undefined)));
  }

  async peek(id: string): Promise<PeekedJob | null> {
    const jobId = normaliseJobId(id);
    return this.#wire.callRaw<PeekedJob | null>('peek', jobId, RAW.peek, `peek ${jobId}\r\n`, jobOf);
  }

  async peekReady(): Promise<PeekedJob | null> {
    return this.#peek('peek-ready', undefined, (cb) => this.#client.peek_ready(cb));
  }

  async peekDelayed(): Promise<PeekedJob | null> {
    return this.#peek('peek-delayed', undefined, (cb) => this.#client.peek_delayed(cb));
  }

  async peekBuried(): Promise<PeekedJob | null> {
    return this.#peek('peek-buried', undefined, (cb) => this.#client.peek_buried(cb));
  }

  async stats(): Promise<ServerStats> {
    return parseYamlStats(await this.#callYaml('stats', undefined, (cb) => this.#client.stats(cb)));
  }

  async statsTube(tube: string): Promise<TubeStats | null> {
    assertTubeName(tube);
    const raw = await this.#orNull(this.#callYaml('stats-tube', undefined, (cb) => this.#client.stats_tube(tube, cb)));
    return raw === null ? null : toTubeStats(parseYamlMap(raw), tube);
  }

  async statsJob(id: string): Promise<JobStats | null> {
    const jobId = normaliseJobId(id);
    const raw = await this.#wire.callRaw<string | null>('stats-job', jobId, RAW.statsJob, `stats-job ${jobId}\r\n`, (_words, body) =>
      (body ?? Buffer.alloc(0)).toString('utf8'),
    );
    return raw === null ? null : toJobStats(parseYamlMap(raw), jobId);
  }

  async listTubes(): Promise<string[]> {
    return parseYamlList(await this.#callYaml('list-tubes', undefined, (cb) => this.#client.list_tubes(cb)));
  }

  async listTubesWatched(): Promise<string[]> {
    return parseYamlList(await this.#callYaml('list-tubes-watched', undefined, (cb) => this.#client.list_tubes_watched(cb)));
  }

  async pauseTube(tube: string, seconds: number): Promise<void> {
    assertTubeName(tube);
    assertSeconds(seconds, 'seconds');
    await this.#wire.call('pause-tube', undefined, (cb) => this.#client.pause_tube(tube, seconds, (err) => cb(err, undefined)));
  }

  async quit(): Promise<void> {
    if (this.#wire.closed) return;
    // end() sends FIN after everything already written; the server answers those commands (a pending
    // reserve answers TIMED_OUT) and then closes. A peer that never closes is cut off after a few
    // seconds so quit() cannot hang; a backlog of pipelined puts has that long to be answered.
    const force = setTimeout(() => this.#client.stream?.destroy(), 5_000);
    force.unref();
    // Someone awaits the close: an idle producer's unref'd socket must not let the process exit first.
    this.#client.stream?.ref();
    this.#client.end();
    await this.#wire.whenClosed;
    clearTimeout(force);
  }

  #checkPut(body: Buffer, params: PutParams): void {
    if (!Buffer.isBuffer(body)) throw new TypeError('Expected the job body to be a Buffer');
    assertPriority(params.priority);
    assertSeconds(params.delaySeconds, 'delay');
    assertTtr(params.ttrSeconds);
    assertBodySize(body, this.#maxJobSize);
  }

  #sendPut(body: Buffer, params: PutParams): Promise<string> {
    const header = `put ${params.priority} ${params.delaySeconds} ${params.ttrSeconds} ${body.length}\r\n`;
    // One buffer per put: the header, the body and its \r\n.
    const bytes = Buffer.allocUnsafe(header.length + body.length + 2);
    bytes.write(header, 0, 'latin1');
    body.copy(bytes, header.length);
    bytes[bytes.length - 2] = 0x0d;
    bytes[bytes.length - 1] = 0x0a;
    return this.#wire.callRaw('put', undefined, RAW.put, bytes, idOf);
  }

  /**
   * Makes `tube` the tube in use, then calls `send` in the same synchronous step as the check, so nothing
   * can write a `use` in between. A `put` written behind an unanswered `use` would land in the old tube
   * if that `use` failed, so while a `use` is in flight every tube-dependent command waits for it; puts
   * into the tube already in use are written at once and pipeline freely.
   */
  async #inTube<T>(tube: string, send: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.#useGate) {
        await this.#useGate.catch(() => undefined);
        continue;
      }
      if (tube === this.#usedTube) return send();
      const gate = this.#wire
        .call<string>('use', undefined, (cb) => this.#client.use(tube, cb))
        .then(
          () => {
            this.#usedTube = tube;
          },
          (error: unknown) => {
            this.#usedTube = undefined;
            throw error;
          },
        );
      this.#useGate = gate;
      try {
        await gate;
      } catch (error) {
        // A `use` lost with the connection: what was to follow it was never written.
        throw error instanceof ConnectionError ? this.#wire.unsentError(error, 'use') : error;
      } finally {
        if (this.#useGate === gate) this.#useGate = undefined;
      }
    }
  }

  async #peek(
    command: string,
    id: string | undefined,
    invoke: (cb: (err: string | null, id: string, body: Buffer) => void) => void,
  ): Promise<PeekedJob | null> {
    return this.#orNull(this.#wire.call<PeekedJob>(command, id, (cb) => invoke((err, jobId, body) => cb(err, { id: jobId, body }))));
  }

  async #orNull<T>(call: Promise<T>): Promise<T | null> {
    try {
      return await call;
    } catch (error) {
      if ((error as { code?: unknown }).code === 'NOT_FOUND') return null;
      throw error;
    }
  }

  /**
   * Sends a command whose reply is a YAML body and resolves to that body's text, parsed by ./yaml.ts
   * (js-yaml, which fivebeans would use, turns tube names like `1.0` into numbers). Our reader hands
   * every body over as bytes.
   */
  #callYaml(command: string, id: string | undefined, invoke: (cb: (err: string | null, value: unknown) => void) => void): Promise<string> {
    return this.#wire.call<unknown>(command, id, invoke).then((body) => (Buffer.isBuffer(body) ? body.toString('utf8') : String(body)));
  }
}
