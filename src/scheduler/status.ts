/**
 * What `bsworker schedules` shows: each declared schedule with its next run, read from its marker on
 * the chosen server, and which scheduler is active, read from the info job it published and checked
 * against its lease (an info job whose lease is no longer reserved is stale: its scheduler is gone).
 */
import { BeanstalkConnection } from '../beanstalk/connection.js';
import type { Beanstalk } from '../beanstalk/types.js';
import { parseServerList, type ServerUrls } from '../servers/server-list.js';
import { compileCron, nextTick } from './cron.js';
import { ACTIVE_TUBE, type ActiveInfo, chooseServer, MARKER_TUBE_PREFIX, markerTube, parseActiveInfo, parseMarker } from './markers.js';
import type { CatchUp, Marker, Schedule } from './types.js';

/**
 * Where a schedule's next run comes from: `delayed` (its marker waits for the tick), `ready` (the tick
 * is due and no active scheduler took it yet), `reserved` (the active scheduler is handling it), or
 * `not armed` (no marker yet: no scheduler was active since it was declared; the time shown is the
 * expression's own next run).
 */
export type MarkerState = 'delayed' | 'ready' | 'reserved' | 'not armed';

/** One schedule in `bsworker schedules --json`. */
export interface ScheduleStatus {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  readonly catchUp: CatchUp;
  readonly task: { readonly tube: string; readonly name: string };
  /** The marker tube, `bsworker.schedule.<name>`. */
  readonly tube: string;
  /** ISO-8601 time of the next tick, or null when the expression fires no more (or a reserved marker hides it). */
  readonly nextRun: string | null;
  readonly marker: MarkerState;
}

/** The active scheduler in `bsworker schedules --json`. */
export interface ActiveStatus extends ActiveInfo {
  /** False when the info job names a lease that is no longer reserved: that scheduler is gone. */
  readonly holding: boolean;
}

/** `bsworker schedules --json`. */
export interface SchedulesStatus {
  /** The server holding the lease and the markers (`host:port`). */
  readonly server: string;
  /** The scheduler that published itself as active, or null when none did (or its info is gone). */
  readonly active: ActiveStatus | null;
  readonly schedules: readonly ScheduleStatus[];
}

/** Reads the status of `schedules` from the chosen server of `url`. Every command is bounded by `timeoutMs`. */
export async function readSchedulesStatus(
  url: ServerUrls | undefined,
  schedules: readonly Schedule[],
  timeoutMs = 5_000,
): Promise<SchedulesStatus> {
  return onChosenServer(url, timeoutMs, async (connection, server) => {
    const active = await readActive(connection);
    const statuses: ScheduleStatus[] = [];
    for (const schedule of schedules) statuses.push(await readOne(connection, schedule));
    return { server, active, schedules: statuses };
  });
}

/** Runs `read` on a connection to the chosen server of `url`, every command bounded by `timeoutMs`. */
async function onChosenServer<T>(
  url: ServerUrls | undefined,
  timeoutMs: number,
  read: (connection: Beanstalk, server: string) => Promise<T>,
): Promise<T> {
  const chosen = chooseServer(parseServerList(url));
  const connection = await BeanstalkConnection.connect(chosen.address, { connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs });
  try {
    return await read(connection, chosen.name);
  } finally {
    await connection.quit();
  }
}

async function readActive(connection: Beanstalk): Promise<ActiveStatus | null> {
  await connection.use(ACTIVE_TUBE);
  const job = await connection.peekReady();
  const info = job === null ? undefined : parseActiveInfo(job.body);
  if (info === undefined) return null;
  const lease = await connection.statsJob(info.lease);
  return { ...info, holding: lease?.state === 'reserved' };
}

async function readOne(connection: Beanstalk, schedule: Schedule): Promise<ScheduleStatus> {
  const tube = markerTube(schedule.name);
  const base = {
    name: schedule.name,
    cron: schedule.cron,
    timezone: schedule.timezone,
    catchUp: schedule.catchUp,
    task: { tube: schedule.task.tube, name: schedule.task.name },
    tube,
  };
  const found = await readMarker(connection, tube);
  if (found !== undefined) return { ...base, nextRun: new Date(found.marker.tick).toISOString(), marker: found.state };
  const stats = await connection.statsTube(tube);
  if (stats !== null && stats.reserved > 0) return { ...base, nextRun: null, marker: 'reserved' };
  const next = nextTick(compileCron(schedule.cron, schedule.timezone), new Date());
  return { ...base, nextRun: next?.toISOString() ?? null, marker: 'not armed' };
}

/** One schedule as the HTTP API lists it: declared in code, found on the server as a marker, or both. */
export interface ServerScheduleStatus {
  readonly name: string;
  readonly cron: string;
  readonly timezone: string;
  /** Null for a marker no loaded module declares (a schedule removed from the code, or no `--jobs`). */
  readonly catchUp: CatchUp | null;
  readonly task: { readonly tube: string; readonly name: string } | null;
  readonly tube: string;
  readonly nextRun: string | null;
  readonly marker: MarkerState;
  /** True when a loaded module declares it. */
  readonly declared: boolean;
}

/** `GET /api/schedules`. */
export interface ServerSchedulesStatus {
  readonly server: string;
  readonly active: ActiveStatus | null;
  readonly schedules: readonly ServerScheduleStatus[];
}

/** At most this many marker tubes are read for schedules no module declares. */
const MAX_UNDECLARED = 500;

/**
 * The schedules `declared` (those the loaded jobs declare, maybe none) with their state on the chosen
 * server, plus every marker on that server that no declaration names, read from the marker itself
 * (its schedule name, cron expression, time zone and next tick): what an HTTP server that loaded no
 * jobs can still show, and a schedule removed from the code whose marker is left behind.
 */
export async function readServerSchedules(
  url: ServerUrls | undefined,
  declared: readonly Schedule[],
  timeoutMs = 5_000,
): Promise<ServerSchedulesStatus> {
  return onChosenServer(url, timeoutMs, async (connection, server) => {
    const active = await readActive(connection);
    const schedules: ServerScheduleStatus[] = [];
    const known = new Set<string>();
    for (const schedule of declared) {
      const status = await readOne(connection, schedule);
      known.add(status.tube);
      schedules.push({ ...status, declared: true });
    }
    const others = (await connection.listTubes())
      .filter((tube) => tube.startsWith(MARKER_TUBE_PREFIX) && !known.has(tube))
      .sort()
      .slice(0, MAX_UNDECLARED);
    for (const tube of others) {
      const found = await readMarker(connection, tube);
      schedules.push({
        name: found?.marker.schedule ?? tube.slice(MARKER_TUBE_PREFIX.length),
        cron: found?.marker.cron ?? '',
        timezone: found?.marker.timezone ?? '',
        catchUp: null,
        task: null,
        tube,
        nextRun: found === undefined ? null : new Date(found.marker.tick).toISOString(),
        marker: found?.state ?? 'reserved',
        declared: false,
      });
    }
    return { server, active, schedules };
  });
}

/** The marker in `tube`, delayed or ready; undefined when it is reserved (being handled) or not a marker. */
async function readMarker(connection: Beanstalk, tube: string): Promise<{ marker: Marker; state: MarkerState } | undefined> {
  await connection.use(tube);
  for (const [state, peek] of [
    ['delayed', () => connection.peekDelayed()],
    ['ready', () => connection.peekReady()],
  ] as const) {
    const job = await peek();
    const marker = job === null ? undefined : parseMarker(job.body);
    if (marker !== undefined) return { marker, state };
  }
  return undefined;
}
