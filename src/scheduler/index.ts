/** Schedules: recurring jobs with beanstalkd as the only store (see the README's "Schedules"). */

export {
  DEFAULT_CATCH_UP,
  DEFAULT_TIMEZONE,
  DuplicateScheduleError,
  defineSchedule,
  findSchedule,
  listSchedules,
  unregisterSchedule,
} from './registry.js';
export type { CatchUp, Marker, Schedule, ScheduleOptions } from './types.js';
