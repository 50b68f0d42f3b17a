/**
 * The seam between bsworker and beanstalkd: the worker and the producer see only {@link Beanstalk},
 * so the worker loop can be unit-tested with a fake and the connection layer can grow (several servers)
 * without touching them.
 */
import type { ServerAddress } from './address.js';

/** A job handed out by `reserve`. */
export interface ReservedJob {
  /** The job id, a decimal string (beanstalkd ids are 64-bit). */
  readonly id: string;
  /** The raw body bytes. Untrusted input: decode it with the envelope module. */
  readonly body: Buffer;
}

/** A job seen through `peek`, `peek-ready`, `peek-delayed` or `peek-buried`. */
export interface PeekedJob {
  readonly id: string;
  readonly body: Buffer;
}

/** Where a put goes and how it is scheduled. */
export interface PutParams {
  /** 0 is the most urgent; 0..2^32-1. */
  readonly priority: number;
  /** Seconds to wait before the job is ready. */
  readonly delaySeconds: number;
  /** Seconds a worker may hold the job before beanstalkd hands it to another; at least 2. */
  readonly ttrSeconds: number;
}

/** The state of one job, from `stats-job`. */
export interface JobStats {
  readonly id: string;
  readonly tube: string;
  // `string & {}` keeps the literal members visible to editors while allowing any other state.
  readonly state: 'ready' | 'delayed' | 'reserved' | 'buried' | (string & {});
  readonly priority: number;
  readonly ageSeconds: number;
  readonly delaySeconds: number;
  readonly ttrSeconds: number;
  readonly timeLeftSeconds: number;
  readonly reserves: number;
  readonly timeouts: number;
  readonly releases: number;
  readonly buries: number;
  readonly kicks: number;
}

/** The counters of one tube, from `stats-tube`. */
export interface TubeStats {
  readonly name: string;
  readonly urgent: number;
  readonly ready: number;
  readonly reserved: number;
  readonly delayed: number;
  readonly buried: number;
  readonly total: number;
  readonly using: number;
  readonly watching: number;
  readonly waiting: number;
  readonly deletes: number;
  readonly pauseSeconds: number;
  readonly pauseTimeLeftSeconds: number;
}

/**
 * Server-wide counters, from `stats`: every field the server reports, keys as the server spells them
 * (`current-jobs-ready`, `max-job-size`, ...).
 */
export type ServerStats = Readonly<Record<string, string | number>>;

/**
 * A promise API over one beanstalkd connection. Every argument is validated before anything is written;
 * failures are the classes in `errors.ts`; a lost connection rejects every pending call with
 * `ConnectionError`.
 */
export interface Beanstalk {
  /** The server this connection talks to. */
  readonly address: ServerAddress;
  /** The server's `max-job-size`, read once when the connection opened. */
  readonly maxJobSize: number;
  /** True once the socket has closed, for whatever reason. */
  readonly isClosed: boolean;
  /** The server's `version` (for example `1.12`), read once when the connection opened. */
  readonly serverVersion: string;

  /** Puts into the tube in use (see {@link use}); resolves to the new job id. */
  put(body: Buffer, params: PutParams): Promise<string>;
  /** `use`s `tube` when it is not already in use, then puts, pipelined on the same connection. */
  putInTube(tube: string, body: Buffer, params: PutParams): Promise<string>;
  use(tube: string): Promise<void>;
  /** Resolves to the number of tubes now watched. */
  watch(tube: string): Promise<number>;
  /** Resolves to the number of tubes now watched. */
  ignore(tube: string): Promise<number>;
  /** `reserve-with-timeout`: resolves to `null` when no job came within `timeoutSeconds`. */
  reserve(timeoutSeconds: number): Promise<ReservedJob | null>;
  /** `reserve-job` (beanstalkd 1.12+): reserves a job in any state by id; `null` when there is none. */
  reserveJob(id: string): Promise<ReservedJob | null>;
  delete(id: string): Promise<void>;
  release(id: string, priority: number, delaySeconds: number): Promise<void>;
  bury(id: string, priority: number): Promise<void>;
  touch(id: string): Promise<void>;
  /** Kicks up to `bound` jobs of the tube in use (buried ones first); resolves to how many moved. */
  kick(bound: number): Promise<number>;
  kickJob(id: string): Promise<void>;
  /** Resolves to `null` when there is no such job. */
  peek(id: string): Promise<PeekedJob | null>;
  /** The next ready job of the tube in use, or `null`. */
  peekReady(): Promise<PeekedJob | null>;
  /** The delayed job of the tube in use with the shortest delay left, or `null`. */
  peekDelayed(): Promise<PeekedJob | null>;
  /** The next buried job of the tube in use, or `null`. */
  peekBuried(): Promise<PeekedJob | null>;
  stats(): Promise<ServerStats>;
  /** Resolves to `null` when the tube does not exist. */
  statsTube(tube: string): Promise<TubeStats | null>;
  /** Resolves to `null` when the job does not exist. */
  statsJob(id: string): Promise<JobStats | null>;
  listTubes(): Promise<string[]>;
  listTubesWatched(): Promise<string[]>;
  pauseTube(tube: string, seconds: number): Promise<void>;
  /** Closes the connection; reserved jobs go back to ready on the server. Idempotent. */
  quit(): Promise<void>;
  /**
   * Closes the socket now, without waiting for the server to close its end: for a connection with
   * nothing in flight (a reply still on its way would be lost). Resolves once the socket has closed.
   * Idempotent.
   */
  destroy(): Promise<void>;
}
