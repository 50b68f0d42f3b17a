/**
 * A minimal beanstalkd client on plain `node:net`, shared by the tests and the benchmark. For the bench
 * it is the "raw limit" every bsworker figure is divided by; for the tests it is a view of the server
 * that does not go through the code under test (and can send what that code would refuse to).
 *
 * It does no validation and no error mapping; it writes bytes and matches replies in order. Replies
 * are handed to plain callbacks (not promises) so the pipelined loops cost as little as possible, and
 * every write made while a chunk of replies is being handled goes out in one syscall (cork/uncork).
 *
 * Only 127.0.0.1: beanstalkd has no authentication, and tests and bench never talk to anything but the
 * private servers they started.
 */
import { createConnection, type Socket } from 'node:net';

/** One reply: its first line (without CRLF) and, for RESERVED/FOUND/OK, its body. */
export interface Reply {
  readonly line: string;
  readonly body: Buffer | undefined;
}

/** Called with each reply, in the order the commands were sent. */
export type ReplyHandler = (reply: Reply) => void;

const HOST = '127.0.0.1';
const CRLF = Buffer.from('\r\n');
/** What a command gets when the connection closes before its reply. */
export const CLOSED: Reply = Object.freeze({ line: 'CLOSED', body: undefined });
/** Replies whose last word is the size of a body that follows. */
const WITH_BODY = /^(?:RESERVED|FOUND|OK) /;

/** One connection; commands may be pipelined freely, replies are matched first in, first out. */
export class RawClient {
  readonly #socket: Socket;
  /** Handlers of the commands sent, oldest first; `#head` is the first not yet answered. */
  #handlers: ReplyHandler[] = [];
  #head = 0;
  #buffer: Buffer = Buffer.alloc(0);
  #failure: Error | undefined;
  /** Resolves once the socket has closed (and every pending command has had its CLOSED reply). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#failure ??= new Error('the raw connection closed');
        // Every command still waiting gets a CLOSED reply, so no loop or promise waits for ever.
        const waiting = this.#handlers.slice(this.#head);
        this.#handlers = [];
        this.#head = 0;
        for (const handler of waiting) handler(CLOSED);
        resolve();
      });
    });
    socket.on('error', (error) => {
      this.#failure ??= error;
    });
  }

  /** Connects to beanstalkd on 127.0.0.1:`port`, giving up after `timeoutMs` when given. */
  static connect(port: number, timeoutMs?: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: HOST, port });
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              socket.destroy();
              reject(new Error(`connect to ${HOST}:${port} timed out after ${timeoutMs} ms`));
            }, timeoutMs);
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new RawClient(socket));
      });
    });
  }

  /** Writes `command` (which carries its own CRLF) and calls `onReply` with its reply. */
  send(command: string | Buffer, onReply: ReplyHandler): void {
    if (this.#failure) {
      onReply(CLOSED);
      return;
    }
    this.#handlers.push(onReply);
    this.#socket.write(command);
  }

  /** Runs `writes` with the socket corked, so that many commands leave in one write. */
  batch(writes: () => void): void {
    this.#socket.cork();
    try {
      writes();
    } finally {
      this.#socket.uncork();
    }
  }

  /** Sends one command and resolves with its reply (`CLOSED` if the connection closes first). */
  request(command: string | Buffer): Promise<Reply> {
    return new Promise((resolve) => this.send(command, resolve));
  }

  /**
   * Like {@link request}, for tests: rejects when no complete reply comes within `timeoutMs` (a command
   * without its CRLF fails the test instead of hanging it; the connection is closed) or when the
   * connection closes first, saying what had arrived of the reply.
   */
  requestWithin(command: string | Buffer, timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const partial = this.#buffer.toString('utf8');
        reject(
          new Error(
            `no complete reply within ${timeoutMs} ms (does the command end with \\r\\n?)${partial ? `; got ${JSON.stringify(partial)}` : ''}`,
          ),
        );
        this.close();
      }, timeoutMs);
      this.send(command, (reply) => {
        clearTimeout(timer);
        if (reply === CLOSED) {
          const partial = this.#buffer.toString('utf8');
          reject(new Error(`connection closed before a complete reply${partial ? ` (got ${JSON.stringify(partial)})` : ''}`));
        } else resolve(reply);
      });
    });
  }

  /** Sends one command and resolves with its reply line, throwing unless it starts with `expected`. */
  async expect(command: string | Buffer, expected: string): Promise<Reply> {
    const reply = await this.request(command);
    if (!reply.line.startsWith(expected)) {
      const shown = typeof command === 'string' ? command.trim() : command.subarray(0, 40).toString('latin1');
      throw new Error(`${shown}: expected ${expected}, got ${reply.line}`);
    }
    return reply;
  }

  /** `stats-tube`, parsed into a flat record (beanstalkd's YAML is `key: value` lines). */
  async statsTube(tube: string): Promise<Record<string, string>> {
    const reply = await this.expect(`stats-tube ${tube}\r\n`, 'OK ');
    return parseYaml(reply.body);
  }

  /** `stats`, parsed into a flat record. */
  async stats(): Promise<Record<string, string>> {
    const reply = await this.expect('stats\r\n', 'OK ');
    return parseYaml(reply.body);
  }

  /** Closes the socket at once; nothing pending is answered. */
  close(): void {
    this.#socket.destroy();
  }

  /** Sends `quit` and half-closes, without waiting for the server to close its side. */
  quit(): void {
    this.#socket.end('quit\r\n');
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    // Handlers usually send the next command: cork so that all of them leave in one write.
    this.#socket.cork();
    try {
      let offset = 0;
      for (;;) {
        const lineEnd = this.#buffer.indexOf(CRLF, offset);
        if (lineEnd < 0) break;
        const line = this.#buffer.toString('latin1', offset, lineEnd);
        let end = lineEnd + 2;
        let body: Buffer | undefined;
        if (WITH_BODY.test(line)) {
          const size = Number(line.slice(line.lastIndexOf(' ') + 1));
          if (this.#buffer.length < end + size + 2) break;
          body = this.#buffer.subarray(end, end + size);
          end += size + 2;
        }
        offset = end;
        const handler = this.#handlers[this.#head];
        if (handler === undefined) {
          // Out of step: nothing after this can be trusted.
          this.#failure = new Error(`raw client: a reply nobody asked for: ${line}`);
          this.#socket.destroy();
          return;
        }
        this.#head += 1;
        handler({ line, body });
      }
      this.#buffer = offset === this.#buffer.length ? Buffer.alloc(0) : this.#buffer.subarray(offset);
      // Drop answered handlers now and then, not on every reply: Array.shift on a long queue is slow.
      if (this.#head > 4096 && this.#head * 2 > this.#handlers.length) {
        this.#handlers = this.#handlers.slice(this.#head);
        this.#head = 0;
      }
    } finally {
      this.#socket.uncork();
    }
  }
}

/**
 * Parses beanstalkd's flat YAML (`---` then `key: value` lines): a full YAML parser (and a dependency)
 * is not needed. Own properties only, so even a `__proto__` key cannot reach a prototype.
 */
export function parseYaml(body: Buffer | undefined): Record<string, string> {
  const entries: [string, string][] = [];
  for (const line of (body ?? Buffer.alloc(0)).toString('utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (line === '---' || colon <= 0) continue;
    let value = line.slice(colon + 1).trim();
    // Strings that could read as numbers come quoted (`version: "1.12"`).
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    entries.push([line.slice(0, colon).trim(), value]);
  }
  return Object.fromEntries(entries);
}

/** The bytes of `put <pri> <delay> <ttr> <size>\r\n<body>\r\n`. */
export function putCommand(body: Buffer, priority = 1024, ttrSeconds = 60): Buffer {
  return Buffer.concat([Buffer.from(`put ${priority} 0 ${ttrSeconds} ${body.length}\r\n`, 'latin1'), body, CRLF]);
}

/** The job id in an `INSERTED <id>` reply; throws on any other reply. */
export function insertedId(reply: Reply): string {
  if (!reply.line.startsWith('INSERTED ')) throw new Error(`put: expected INSERTED, got ${reply.line}`);
  return reply.line.slice(9);
}

/**
 * Sends `count` commands on one connection with at most `window` unanswered at a time, topping the
 * window up as replies arrive. `command(i)` builds the i-th command; `accept(reply, i)` returns false
 * for a reply that should fail the whole pipeline. Resolves once every reply has arrived.
 */
export function pipeline(
  client: RawClient,
  count: number,
  window: number,
  command: (index: number) => string | Buffer,
  accept: (reply: Reply, index: number) => boolean,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (count === 0) {
      resolve();
      return;
    }
    let sent = 0;
    let answered = 0;
    let failed = false;
    const onReply = (reply: Reply): void => {
      if (failed) return;
      if (!accept(reply, answered)) {
        failed = true;
        reject(new Error(`pipelined command ${answered}: unexpected reply ${reply.line}`));
        return;
      }
      answered += 1;
      if (answered === count) resolve();
      else if (sent < count) sendNext();
    };
    const sendNext = (): void => {
      const index = sent;
      sent += 1;
      client.send(command(index), onReply);
    };
    client.batch(() => {
      while (sent < Math.min(window, count)) sendNext();
    });
  });
}

/**
 * Puts `count` copies of `put` (from {@link putCommand}), or the command `put(index)` makes for each job,
 * with a bounded window; resolves to the ids.
 */
export async function pipelinePuts(
  client: RawClient,
  put: Buffer | ((index: number) => Buffer),
  count: number,
  window = 1024,
): Promise<string[]> {
  const ids = new Array<string>(count);
  await pipeline(client, count, window, typeof put === 'function' ? put : () => put, (reply, index) => {
    if (!reply.line.startsWith('INSERTED ')) return false;
    ids[index] = reply.line.slice(9);
    return true;
  });
  return ids;
}

/** Deletes jobs by id (any connection may delete a ready job): the bench's cleanup between runs. */
export function pipelineDeletes(client: RawClient, ids: readonly string[], window = 1024): Promise<void> {
  return pipeline(
    client,
    ids.length,
    window,
    (index) => `delete ${ids[index]}\r\n`,
    (reply) => reply.line === 'DELETED',
  );
}

const RESERVE_NOW = Buffer.from('reserve-with-timeout 0\r\n', 'latin1');

/**
 * Reserves and deletes `count` jobs on one connection (which must already watch their tube), keeping
 * `window` reserves outstanding and sending `delete <id>` as each RESERVED arrives: the fastest a
 * single-connection consumer can go, the limit a worker is measured against. A `TIMED_OUT` means the
 * tube ran dry before `count` jobs, which is a bench bug, so it fails. `onBody`, when given, sees each
 * job's body before its delete is sent (the floor of a consumer that must parse what it runs).
 */
export function pipelineReserveDelete(client: RawClient, count: number, window = 64, onBody?: (body: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (count === 0) {
      resolve();
      return;
    }
    let outstanding = 0;
    let reserved = 0;
    let deleted = 0;
    let failed = false;
    const fail = (message: string): void => {
      if (failed) return;
      failed = true;
      reject(new Error(message));
    };
    const onDeleted = (reply: Reply): void => {
      if (reply.line !== 'DELETED') fail(`delete: unexpected reply ${reply.line}`);
      deleted += 1;
      if (deleted === count) resolve();
    };
    const onReserved = (reply: Reply): void => {
      outstanding -= 1;
      if (failed) return;
      if (!reply.line.startsWith('RESERVED ')) {
        fail(`reserve-with-timeout 0 after ${reserved} of ${count} jobs: ${reply.line}`);
        return;
      }
      reserved += 1;
      if (onBody) onBody(reply.body as Buffer);
      client.send(`delete ${reply.line.slice(9, reply.line.indexOf(' ', 9))}\r\n`, onDeleted);
      topUp();
    };
    const topUp = (): void => {
      while (outstanding < window && reserved + outstanding < count) {
        outstanding += 1;
        client.send(RESERVE_NOW, onReserved);
      }
    };
    client.batch(topUp);
  });
}
