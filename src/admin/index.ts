/**
 * The admin layer's surface, for the CLI, the HTTP API and the dashboard: the {@link Admin} class, its
 * options, its errors and the shapes it returns. Nothing else in `src/admin/` is meant to be imported
 * from outside it.
 */
export { ADMIN_DEFAULTS, Admin, type AdminOptions, type JobsOptions } from './admin.js';
export {
  AdminError,
  type ConflictCode,
  ConflictError,
  type InvalidInputCode,
  InvalidInputError,
  type NotFoundCode,
  NotFoundError,
  type UnavailableCode,
  UnavailableError,
} from './errors.js';
export type { ListOptions } from './jobs.js';
export { checkPutInput, type KwargsCheck, type PutInput } from './put.js';
export { noSuchTube } from './read.js';
export { REQUEUE_DEFAULTS, type RequeueOptions } from './requeue.js';
export { SCAN_DEFAULTS, SCAN_MAX } from './scan.js';
export * from './types.js';
