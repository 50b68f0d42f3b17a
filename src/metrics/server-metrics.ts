/**
 * Server-side metrics, for `bsworker serve`: the backlog of every tube on every server and the
 * servers' own counters, read fresh on each scrape (prom-client `collect()` callbacks), with a
 * deadline. Every metric of one scrape shares one read of each server. A server that is down, or does
 * not answer in time, gives `bsworker_server_up 0` and no other series: no stale backlog.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import type { ServerAddress } from '../beanstalk/address.js';
import { BeanstalkConnection } from '../beanstalk/connection.js';
import type { Beanstalk, ServerStats, TubeStats } from '../beanstalk/types.js';
import { assertTubeName } from '../beanstalk/validate.js';
import { drainingValue, STAT_FIELDS, versionLabel } from './beanstalkd-stats.js';
import { promClient } from './prom-client.js';

/** What the collector reads from a server: a part of `Beanstalk` (src/beanstalk/types.ts). */
export interface StatsSource {
  stats(): Promise<ServerStats>;
  listTubes(): Promise<string[]>;
  /** Resolves to null when the tube has gone since it was listed. */
  statsTube(tube: string): Promise<TubeStats | null>;
}

/** One server to watch. */
export interface MonitoredServer {
  /** The `server` label, e.g. `127.0.0.1:11300`. */
  readonly name: string;
  /** A connection, or a function that gives one (called on every scrape: it may reconnect). */
  readonly connection: StatsSource | (() => StatsSource | Promise<StatsSource>);
}

/** The states `bsworker_tube_jobs` reports; `urgent` counts ready jobs with priority < 1024 (a part of `ready`). */
export const TUBE_STATES = ['ready', 'urgent', 'reserved', 'delayed', 'buried'] as const;

/** Every default of the server metrics, in one place. */
export const SERVER_METRICS_DEFAULTS = Object.freeze({
  /** How long one scrape waits for one server. */
  timeoutMs: 5_000,
  /** Tubes reported per server (by name order); `bsworker_server_tubes` still counts all of them. */
  maxTubes: 1_000,
});

/** Options of {@link ServerMetrics}. */
export interface ServerMetricsOptions {
  /** The servers; a list of one today. */
  readonly servers: readonly MonitoredServer[];
  /** @defaultValue a new Registry */
  readonly registry?: Registry;
  /** @defaultValue SERVER_METRICS_DEFAULTS.timeoutMs */
  readonly timeoutMs?: number;
  /** @defaultValue SERVER_METRICS_DEFAULTS.maxTubes */
  readonly maxTubes?: number;
}

/** One server, as one scrape found it. */
interface Reading {
  readonly server: string;
  readonly seconds: number;
  /** Undefined when the server was down or too slow. */
  readonly found?: { readonly stats: ServerStats; readonly tubes: readonly TubeStats[]; readonly tubeCount: number };
}

const isTubeName = (name: string): boolean => {
  try {
    assertTubeName(name);
    return true;
  } catch {
    return false;
  }
};

/** The metrics of a list of servers, in one registry. */
export class ServerMetrics {
  /** Serve `registry.metrics()` with `registry.contentType`. */
  readonly registry: Registry;
  readonly #servers: readonly MonitoredServer[];
  readonly #timeoutMs: number;
  readonly #maxTubes: number;
  #reading: Promise<Reading[]> | undefined;

  constructor(options: ServerMetricsOptions) {
    this.registry = options.registry ?? new (promClient().Registry)();
    this.#servers = [...options.servers];
    this.#timeoutMs = options.timeoutMs ?? SERVER_METRICS_DEFAULTS.timeoutMs;
    this.#maxTubes = options.maxTubes ?? SERVER_METRICS_DEFAULTS.maxTubes;
    this.#register();
  }

  /**
   * This scrape's reading of every server. The registry calls every metric's `collect()` in the same
   * turn, so they all get the one read in flight; it is forgotten once done, and the next scrape reads again.
   */
  #read(): Promise<Reading[]> {
    this.#reading ??= Promise.all(this.#servers.map((server) => this.#readOne(server))).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #readOne(server: MonitoredServer): Promise<Reading> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#timeoutMs);
    });
    const reading = (async () => {
      const source = typeof server.connection === 'function' ? await server.connection() : server.connection;
      const [stats, names] = await Promise.all([source.stats(), source.listTubes()]);
      // Names come from the server; only valid ones are asked about (and become label values).
      const valid = names.filter(isTubeName).sort();
      const tubes = await Promise.all(valid.slice(0, this.#maxTubes).map((tube) => source.statsTube(tube)));
      return { stats, tubes: tubes.filter((tube): tube is TubeStats => tube !== null), tubeCount: valid.length };
    })().catch(() => undefined);
    const found = await Promise.race([reading, late]);
    clearTimeout(timer);
    const seconds = (performance.now() - started) / 1000;
    return found ? { server: server.name, seconds, found } : { server: server.name, seconds };
  }

  #register(): void {
    const { Counter, Gauge } = promClient();
    const registers = [this.registry];
    const read = (): Promise<Reading[]> => this.#read();
    new Gauge({
      name: 'bsworker_server_up',
      help: 'Whether the server answered this scrape in time: 1 up, 0 down or too slow (its other series are then left out).',
      labelNames: ['server'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) this.set({ server }, found ? 1 : 0);
      },
    });
    new Gauge({
      name: 'bsworker_server_scrape_duration_seconds',
      help: 'How long reading the server took in this scrape (up to the deadline).',
      labelNames: ['server'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, seconds } of readings) this.set({ server }, seconds);
      },
    });
    new Gauge({
      name: 'bsworker_server_tubes',
      help: 'Tubes on the server; at most maxTubes of them (by name) have tube series.',
      labelNames: ['server'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) if (found) this.set({ server }, found.tubeCount);
      },
    });
    const tubeGauge = (name: string, help: string, value: (tube: TubeStats) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['server', 'tube'],
        registers,
        async collect() {
          const readings = await read();
          this.reset();
          for (const { server, found } of readings)
            for (const tube of found?.tubes ?? []) this.set({ server, tube: tube.name }, value(tube));
        },
      });
    };
    new Gauge({
      name: 'bsworker_tube_jobs',
      help: 'Jobs in a tube by state: ready, urgent (ready with priority < 1024, a part of ready), reserved, delayed, buried.',
      labelNames: ['server', 'tube', 'state'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) {
          for (const tube of found?.tubes ?? []) for (const state of TUBE_STATES) this.set({ server, tube: tube.name, state }, tube[state]);
        }
      },
    });
    tubeGauge('bsworker_tube_waiting', 'Connections waiting in a reserve on the tube.', (tube) => tube.waiting);
    tubeGauge('bsworker_tube_paused', '1 while the tube is paused (pause-tube), else 0.', (tube) =>
      tube.pauseTimeLeftSeconds > 0 ? 1 : 0,
    );
    const tubeCounter = (name: string, help: string, value: (tube: TubeStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['server', 'tube'],
        registers,
        async collect() {
          const readings = await read();
          this.reset();
          for (const { server, found } of readings)
            for (const tube of found?.tubes ?? []) this.inc({ server, tube: tube.name }, value(tube));
        },
      });
    };
    tubeCounter(
      'bsworker_tube_puts_total',
      'Jobs put into the tube (its total-jobs); starts again if the tube is dropped and made again.',
      (tube) => tube.total,
    );
    tubeCounter('bsworker_tube_deletes_total', 'delete commands on the tube (its cmd-delete).', (tube) => tube.deletes);

    for (const { field, metric, type, help } of STAT_FIELDS) {
      const collect = async function (this: Gauge | Counter): Promise<void> {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) {
          const value = found?.stats[field];
          if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) continue;
          if (this instanceof Counter) this.inc({ server }, value);
          else this.set({ server }, value);
        }
      };
      if (type === 'counter') new Counter({ name: metric, help, labelNames: ['server'], registers, collect });
      else new Gauge({ name: metric, help, labelNames: ['server'], registers, collect });
    }
    new Gauge({
      name: 'beanstalkd_draining',
      help: '1 while the server is in drain mode (SIGUSR1: puts are refused).',
      labelNames: ['server'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) {
          const value = drainingValue(found?.stats.draining);
          if (value !== undefined) this.set({ server }, value);
        }
      },
    });
    new Gauge({
      name: 'beanstalkd_info',
      help: 'Always 1; the server version is in its `version` label.',
      labelNames: ['server', 'version'],
      registers,
      async collect() {
        const readings = await read();
        this.reset();
        for (const { server, found } of readings) {
          const version = versionLabel(found?.stats.version);
          if (version !== undefined) this.set({ server, version }, 1);
        }
      },
    });
  }
}

/** A {@link MonitoredServer} over its own connection, reopened on the next scrape after a loss. */
export interface OwnedServer extends MonitoredServer {
  /** Closes the connection. */
  close(): Promise<void>;
}

/**
 * Watches the server at `address` on a connection of its own. A server that refuses the connection is
 * reported down at once (no retrying inside a scrape: the next scrape is the retry); one that does not
 * answer is dropped after `timeoutMs`, and a later scrape connects again.
 */
export function monitorServer(address: ServerAddress, name: string, options: { readonly timeoutMs?: number } = {}): OwnedServer {
  const timeoutMs = options.timeoutMs ?? SERVER_METRICS_DEFAULTS.timeoutMs;
  let current: Beanstalk | undefined;
  let closed = false;
  return {
    name,
    async connection() {
      if (closed) throw new Error('This server monitor was closed');
      if (current === undefined || current.isClosed) {
        current = await BeanstalkConnection.connect(address, { connectTimeoutMs: timeoutMs, stallTimeoutMs: timeoutMs });
        // Closed meanwhile: this connection must not outlive the monitor.
        if (closed) await current.quit();
      }
      return current;
    },
    async close() {
      closed = true;
      await current?.quit();
    },
  };
}
