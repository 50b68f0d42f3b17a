/**
 * A starting point for in-memory stand-ins of {@link Beanstalk} in unit tests: every command fails
 * loudly, so a fake implements only the commands its side (producer, worker) is meant to send, and a
 * test notices at once if the code under test starts sending another one. {@link RecordingBeanstalk}
 * is the producer's fake.
 */
import type { ServerAddress } from '../../src/beanstalk/address.js';
import type { Beanstalk, JobStats, PeekedJob, PutParams, ReservedJob, ServerStats, TubeStats } from '../../src/beanstalk/types.js';

/** The names of the commands of {@link Beanstalk}, as opposed to its fields. */
type BeanstalkCommand = Exclude<keyof Beanstalk, 'address' | 'maxJobSize' | 'isClosed' | 'serverVersion'>;

/**
 * A {@link Beanstalk} whose every command throws `Error('<name>: unexpected call to <command>')`.
 * Extend it and override what the fake should answer; `isClosed` is writable so that a fake's `quit`
 * (or a dropped connection) can set it.
 *
 * The commands throw synchronously instead of returning a rejected promise, as the fakes they replace
 * did: a call the code under test does not await, or whose rejection it swallows, still fails at the
 * call site instead of passing unnoticed.
 */
export abstract class UnexpectedBeanstalk implements Beanstalk {
  readonly address: ServerAddress = { host: '127.0.0.1', port: 11_300 };
  readonly maxJobSize: number = 65_535;
  /** Unknown: the worker buries without failure records, as on a server older than 1.12. */
  readonly serverVersion: string = '';
  isClosed = false;
  readonly #name: string;

  /** @param name - The fake's name, which starts every error message so a failure says which fake it was. */
  constructor(name: string) {
    this.#name = name;
  }

  #unexpected(command: BeanstalkCommand): never {
    throw new Error(`${this.#name}: unexpected call to ${command}`);
  }

  put(_body: Buffer, _params: PutParams): Promise<string> {
    this.#unexpected('put');
  }
  putInTube(_tube: string, _body: Buffer, _params: PutParams): Promise<string> {
    this.#unexpected('putInTube');
  }
  use(_tube: string): Promise<void> {
    this.#unexpected('use');
  }
  watch(_tube: string): Promise<number> {
    this.#unexpected('watch');
  }
  ignore(_tube: string): Promise<number> {
    this.#unexpected('ignore');
  }
  reserve(_timeoutSeconds: number): Promise<ReservedJob | null> {
    this.#unexpected('reserve');
  }
  reserveJob(_id: string): Promise<ReservedJob | null> {
    this.#unexpected('reserveJob');
  }
  delete(_id: string): Promise<void> {
    this.#unexpected('delete');
  }
  release(_id: string, _priority: number, _delaySeconds: number): Promise<void> {
    this.#unexpected('release');
  }
  bury(_id: string, _priority: number): Promise<void> {
    this.#unexpected('bury');
  }
  touch(_id: string): Promise<void> {
    this.#unexpected('touch');
  }
  kick(_bound: number): Promise<number> {
    this.#unexpected('kick');
  }
  kickJob(_id: string): Promise<void> {
    this.#unexpected('kickJob');
  }
  peek(_id: string): Promise<PeekedJob | null> {
    this.#unexpected('peek');
  }
  peekReady(): Promise<PeekedJob | null> {
    this.#unexpected('peekReady');
  }
  peekDelayed(): Promise<PeekedJob | null> {
    this.#unexpected('peekDelayed');
  }
  peekBuried(): Promise<PeekedJob | null> {
    this.#unexpected('peekBuried');
  }
  stats(): Promise<ServerStats> {
    this.#unexpected('stats');
  }
  statsTube(_tube: string): Promise<TubeStats | null> {
    this.#unexpected('statsTube');
  }
  statsJob(_id: string): Promise<JobStats | null> {
    this.#unexpected('statsJob');
  }
  listTubes(): Promise<string[]> {
    this.#unexpected('listTubes');
  }
  listTubesWatched(): Promise<string[]> {
    this.#unexpected('listTubesWatched');
  }
  pauseTube(_tube: string, _seconds: number): Promise<void> {
    this.#unexpected('pauseTube');
  }
  quit(): Promise<void> {
    this.#unexpected('quit');
  }
  /** A fake closes the same way either way: by its `quit`. */
  destroy(): Promise<void> {
    return this.quit();
  }
}

/** One `putInTube` call that a {@link RecordingBeanstalk} received. */
export interface RecordedPut {
  readonly tube: string;
  readonly params: PutParams;
  /** The body's length in bytes, recorded whether or not the body is kept. */
  readonly bytes: number;
  /**
   * A copy of the body as sent (the caller may reuse its buffer once a put is written, as a real
   * connection allows), or `undefined` for a put that {@link RecordingBeanstalkOptions.keepBody} let go.
   */
  readonly body: Buffer | undefined;
}

/** How a {@link RecordingBeanstalk} answers. */
export interface RecordingBeanstalkOptions {
  /**
   * The largest body the fake server takes, as a real one reports it.
   * @defaultValue 65_535
   */
  readonly maxJobSize?: number;
  /**
   * Whether the put at `index` (0-based, in the order received) keeps its body. A test of a large batch
   * keeps a sample, so that the fake does not hold on to the memory the code under test is meant to bound.
   * @defaultValue every put keeps its body
   */
  readonly keepBody?: (index: number) => boolean;
  /**
   * Runs after a put is recorded and before it is answered: await in it to hold the reply back, throw
   * (or reject) to fail that put with the error. It sees the put as the server would have: recorded.
   */
  readonly beforePut?: (put: RecordedPut, index: number) => void | Promise<void>;
}

/**
 * The producer side's fake connection: it records every `putInTube` and answers with the ids 1, 2, ...
 * Every other command a producer should never send fails loudly (see {@link UnexpectedBeanstalk}), so a
 * test notices if JobQueue starts sending one. `quit` closes it and is counted.
 */
export class RecordingBeanstalk extends UnexpectedBeanstalk {
  readonly puts: RecordedPut[] = [];
  override readonly maxJobSize: number;
  quitCalls = 0;
  readonly #options: RecordingBeanstalkOptions;

  constructor(options: RecordingBeanstalkOptions = {}) {
    super('RecordingBeanstalk');
    this.maxJobSize = options.maxJobSize ?? 65_535;
    this.#options = options;
  }

  override async putInTube(tube: string, body: Buffer, params: PutParams): Promise<string> {
    const index = this.puts.length;
    const keep = this.#options.keepBody?.(index) ?? true;
    const put: RecordedPut = { tube, params, bytes: body.length, body: keep ? Buffer.from(body) : undefined };
    this.puts.push(put);
    await this.#options.beforePut?.(put, index);
    return String(index + 1);
  }

  override async quit(): Promise<void> {
    this.quitCalls += 1;
    this.isClosed = true;
  }
}
