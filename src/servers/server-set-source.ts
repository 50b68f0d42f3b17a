/**
 * A worker's job source over several servers: one reservation engine per server (see
 * ../engine/engine.ts), sharing the worker's one budget of places.
 *
 * - **One budget.** Each engine sees as its capacity the runner's free places minus what the other
 *   engines are asking for with `reserve-with-timeout 0`. An engine whose tubes are empty asks for
 *   nothing, and an engine whose server is down has no connection to ask on: neither holds a place
 *   another server could use, and when a pump leaves places unasked for, they are offered to the others.
 * - **Waits are outside the budget.** An idle engine waits with one blocking reserve on its server, and
 *   that wait does not count against the others: three idle servers do not take three places from the
 *   one that gets work. The price: a job a wait hands out while every place is taken starts anyway, so
 *   for the length of such jobs a worker may run up to `servers - 1` jobs over its concurrency. Giving
 *   the job back instead would cost a `release`, and releases count as attempts.
 * - **A server down at start** does not stop the worker while another answers: its engine is opened
 *   again with backoff until it answers or the worker stops. A server lost later is its engine's to
 *   reconnect, as with one server.
 * - **Fairness.** Pumps start at a different server each time, so busy servers take turns at the
 *   places that free up.
 */
import type { ReservationEngine } from '../engine/engine.js';
import type { JobSink, JobSource } from '../engine/job-source.js';
import type { Logger } from '../logging/logger.js';
import { backoffDelay } from '../util/backoff.js';
import type { Reservation } from '../worker/reservation.js';
import { qualifyId } from './job-id.js';
import type { NamedServer } from './server-list.js';

/** What an engine for one server of the set is made with. */
export interface EngineHooks {
  /** To call when the engine leaves places unasked for. */
  readonly onSpare: () => void;
  /** The ids its jobs are given in events and logs: `host:port/id`. */
  readonly publicId: (id: string) => string;
}

/** Options of {@link ServerSetSource}. */
export interface ServerSetOptions {
  readonly servers: readonly NamedServer[];
  /** Makes the engine of one server; called again for each attempt at a server down at start. */
  readonly makeEngine: (server: NamedServer, hooks: EngineHooks) => ReservationEngine;
  readonly logger: Logger;
  readonly stopping: AbortSignal;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
}

/** One server of the set and its engine, once one has opened. */
interface Member {
  readonly server: NamedServer;
  engine: ReservationEngine | undefined;
  retry: NodeJS.Timeout | undefined;
}

/** See the module comment. */
export class ServerSetSource implements JobSource {
  readonly #options: ServerSetOptions;
  readonly #members: Member[];
  /** Which engine handed out each job, for giveBack; a WeakMap so an ended job holds nothing. */
  readonly #owner = new WeakMap<Reservation, ReservationEngine>();
  #sink: JobSink | undefined;
  #turn = 0;
  #offering = false;

  constructor(options: ServerSetOptions) {
    this.#options = options;
    this.#members = options.servers.map((server) => ({ server, engine: undefined, retry: undefined }));
  }

  /**
   * Opens every server's engine and resolves as soon as one has opened: a server that is slow to answer
   * (or does not answer at all until its connect deadline) must not hold up the worker's start while
   * another is already handing out jobs. The rest go on opening; one that fails is tried again with
   * backoff. Rejects only when none of them answers.
   */
  open(sink: JobSink): Promise<void> {
    this.#sink = sink;
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      // Servers that failed before any opened: retried once one has (if none does, the open fails).
      const failed: [Member, unknown][] = [];
      for (const member of this.#members) {
        this.#openMember(member).then(
          () => {
            if (opened) return;
            opened = true;
            resolve();
            for (const [each, error] of failed.splice(0)) this.#unreachableAtStart(each, error);
          },
          (error: unknown) => {
            if (opened) {
              this.#unreachableAtStart(member, error);
              return;
            }
            failed.push([member, error]);
            if (failed.length < this.#members.length) return;
            const first = (failed[0] as [Member, unknown])[1];
            this.close().then(
              () => reject(first),
              () => reject(first),
            );
          },
        );
      }
    });
  }

  pump(): void {
    const members = this.#members;
    const count = members.length;
    const start = this.#turn;
    this.#turn = (start + 1) % count;
    for (let i = 0; i < count; i += 1) members[(start + i) % count]?.engine?.pump();
  }

  giveBack(reservation: Reservation): void {
    this.#owner.get(reservation)?.giveBack(reservation);
  }

  async stopReserving(): Promise<void> {
    for (const member of this.#members) clearTimeout(member.retry);
    await Promise.all(this.#members.map((member) => member.engine?.stopReserving()));
  }

  async close(): Promise<void> {
    for (const member of this.#members) clearTimeout(member.retry);
    await Promise.all(this.#members.map((member) => member.engine?.close()));
  }

  async #openMember(member: Member): Promise<void> {
    const sink = this.#sink as JobSink;
    let engine: ReservationEngine | undefined;
    const members = this.#members;
    const view: JobSink = {
      // The runner's free places, less what the other engines have asked for (their waits, and the
      // asks of a silent server, excepted).
      get capacity() {
        let asking = 0;
        for (const other of members) {
          const each = other.engine;
          if (each !== undefined && each !== engine) asking += each.sharedAsking;
        }
        return sink.capacity - asking;
      },
      accept: (reservation) => {
        this.#owner.set(reservation, engine as ReservationEngine);
        sink.accept(reservation);
      },
    };
    const name = member.server.name;
    engine = this.#options.makeEngine(member.server, {
      onSpare: () => this.#offer(engine as ReservationEngine),
      publicId: (id) => qualifyId(name, id),
    });
    try {
      await engine.open(view);
    } catch (error) {
      await engine.close().catch(() => undefined);
      throw error;
    }
    if (this.#options.stopping.aborted) {
      await engine.close();
      return;
    }
    member.engine = engine;
    // A server that came back later: the places it can use are offered to it now.
    engine.pump();
  }

  /** Places `from` leaves unasked for, offered to the other engines (never re-entered). */
  #offer(from: ReservationEngine): void {
    if (this.#offering) return;
    this.#offering = true;
    try {
      for (const member of this.#members) if (member.engine !== undefined && member.engine !== from) member.engine.pump();
    } finally {
      this.#offering = false;
    }
  }

  #unreachableAtStart(member: Member, error: unknown): void {
    this.#options.logger.warn(
      { server: member.server.name, err: error },
      'beanstalkd server unreachable at start; the worker goes on with the others and keeps trying it',
    );
    this.#retryLater(member, 1);
  }

  #retryLater(member: Member, attempt: number): void {
    if (this.#options.stopping.aborted) return;
    const delay = backoffDelay(attempt, { initial: this.#options.reconnectMinMs, max: this.#options.reconnectMaxMs, jitter: 0.5 });
    member.retry = setTimeout(() => {
      member.retry = undefined;
      this.#openMember(member).then(
        () => {
          if (member.engine)
            this.#options.logger.info(
              { server: member.server.name, attempts: attempt },
              'beanstalkd server reachable; reserving from it too',
            );
        },
        () => this.#retryLater(member, attempt + 1),
      );
    }, delay);
    member.retry.unref();
  }
}
