/**
 * Where the scheduler keeps its state on beanstalkd: the lock tube with its one lease job, one marker
 * tube per schedule whose one delayed job is the next tick, and the tube naming the active scheduler.
 * Every marker body is read back from the server, so it is untrusted: {@link parseMarker} checks it.
 */
import { MAX_TUBE_NAME_BYTES } from '../beanstalk/validate.js';
import type { NamedServer } from '../servers/server-list.js';
import type { Marker } from './types.js';

/** The tube holding the lease job; the scheduler that has it reserved is the active one. */
export const LOCK_TUBE = 'bsworker.scheduler.lock';
/** The tube holding one info job `{host, pid, since, lease}` about the active scheduler. */
export const ACTIVE_TUBE = 'bsworker.scheduler.active';
/** Each schedule's marker tube is this prefix and the schedule's name. */
export const MARKER_TUBE_PREFIX = 'bsworker.schedule.';
/** The longest schedule name whose marker tube is still a tube name beanstalkd accepts. */
export const MAX_SCHEDULE_NAME_BYTES = MAX_TUBE_NAME_BYTES - MARKER_TUBE_PREFIX.length;

/** The marker tube of schedule `name`. */
export function markerTube(name: string): string {
  return `${MARKER_TUBE_PREFIX}${name}`;
}

/** A marker's body: small JSON, ASCII only (schedule names and ISO times are), as its put needs. */
export function encodeMarker(marker: Marker): string {
  return JSON.stringify({ schedule: marker.schedule, tick: marker.tick, cron: marker.cron, timezone: marker.timezone });
}

/** A marker read from the server, or undefined when the body is not one (someone put something else). */
export function parseMarker(body: Buffer): Marker | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { schedule, tick, cron, timezone } = value as Record<string, unknown>;
  if (typeof schedule !== 'string' || typeof tick !== 'string' || typeof cron !== 'string' || typeof timezone !== 'string')
    return undefined;
  if (Number.isNaN(Date.parse(tick))) return undefined;
  return { schedule, tick, cron, timezone };
}

/** The body of the active scheduler's info job. */
export interface ActiveInfo {
  readonly host: string;
  readonly pid: number;
  /** ISO-8601 time it became active. */
  readonly since: string;
  /** The id of the lease job it holds reserved, on the chosen server. */
  readonly lease: string;
}

/** The info job's body, or undefined when it is not one. */
export function parseActiveInfo(body: Buffer): ActiveInfo | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { host, pid, since, lease } = value as Record<string, unknown>;
  if (typeof host !== 'string' || typeof pid !== 'number' || typeof since !== 'string' || typeof lease !== 'string') return undefined;
  if (!/^[0-9]{1,20}$/.test(lease)) return undefined;
  return { host, pid, since, lease };
}

/**
 * The server that holds the lease and the markers: the first of the configured servers by name. Every
 * process sorts the same normalised names, so all agree on it whatever order their `url` lists.
 */
export function chooseServer(servers: readonly NamedServer[]): NamedServer {
  const sorted = [...servers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const first = sorted[0];
  if (first === undefined) throw new RangeError('Expected at least one beanstalkd server');
  return first;
}
