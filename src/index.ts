/**
 * bsworker: a typed job runner on beanstalkd. Everything public is exported here, by name.
 * @packageDocumentation
 */

export {
  DEFAULT_ADDRESS,
  formatAddress,
  parseServerUrl,
  resolveServerAddress,
  type ServerAddress,
} from './beanstalk/address.js';
export { BeanstalkConnection, type ConnectOptions } from './beanstalk/connection.js';
export {
  BeanstalkError,
  BuriedOnPutError,
  ConnectionError,
  DeadlineSoonError,
  DrainingError,
  InternalServerError,
  JobTooBigError,
  NotFoundError,
  OutOfMemoryError,
  ProtocolError,
  UnexpectedReplyError,
} from './beanstalk/errors.js';
export type { Beanstalk, JobStats, PeekedJob, PutParams, ReservedJob, ServerStats, TubeStats } from './beanstalk/types.js';
export {
  type DecodeFailure,
  type DecodeFailureReason,
  type DecodeResult,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
} from './envelope/envelope.js';
export { JobLoadError, loadJobs } from './loader/load-jobs.js';
export { type CreateLoggerOptions, createLogger, type Logger } from './logging/logger.js';
export { PutManyError, UnrecoverableError } from './tasks/errors.js';
export { getTaskMetadata, TASK_METADATA_KEY } from './tasks/metadata.js';
export { PUT_DEFAULTS } from './tasks/put-options.js';
export { JobQueue, type JobQueueOptions } from './tasks/queue.js';
export { findTask, listTasks, type RegisteredTask, unregisterTask } from './tasks/registry.js';
export type {
  BackoffOptions,
  EmptyKwargs,
  InlineArgs,
  KwargsOf,
  PutArgs,
  PutManyOptions,
  PutOptions,
  Putter,
  TaskContext,
  TaskDecorator,
  TaskFunction,
  TaskMetadata,
  TaskOptions,
} from './tasks/types.js';
export { BACKOFF_DEFAULTS, retryDelaySeconds } from './worker/backoff.js';
export type { BuryReason, DeleteReason, JobEvent, StopResult, WorkerEvents } from './worker/events.js';
export { WORKER_DEFAULTS, type WorkerOptions } from './worker/options.js';
export { TaskTimeoutError } from './worker/process-job.js';
export { type StopOptions, Worker, type WorkerState } from './worker/worker.js';
