/**
 * bsworker: a typed job runner on beanstalkd. Everything public is exported here, by name; everything
 * else (the connection, the registry, the metadata key, the address parser) is internal and may change.
 * @packageDocumentation
 */

export type { ServerAddress } from './beanstalk/address.js';
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
  PutOutcomeUnknownError,
  UnexpectedReplyError,
} from './beanstalk/errors.js';
export type { JobStats } from './beanstalk/types.js';
export {
  type DecodeFailure,
  type DecodeFailureReason,
  type DecodeResult,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
} from './envelope/envelope.js';
export { FlowStepError } from './flows/advance.js';
export type { AnyLink, ChainResult, CheckedChain, Link, LinkResult, NoInput, PipeMismatch } from './flows/links.js';
export type { ChainMeta, ChordMeta, Flow, GroupMeta, ReplyMeta, WireLink } from './flows/meta.js';
export {
  CHORD_FALLBACK_SECONDS,
  type Chain,
  type Chord,
  type FlowPutOptions,
  type Group,
  type GroupIds,
  GroupPutError,
} from './flows/put-flows.js';
export { JobLoadError, loadJobs } from './loader/load-jobs.js';
export { type CreateLoggerOptions, createLogger, type Logger } from './logging/logger.js';
export {
  type MetricsEndpoint,
  type MetricsRenderer,
  type MetricsServerOptions,
  type RenderedMetrics,
  registryRenderer,
  startMetricsServer,
} from './metrics/http.js';
export {
  type MonitoredServer,
  monitorServer,
  type OwnedServer,
  ServerMetrics,
  type ServerMetricsOptions,
  type StatsSource,
} from './metrics/server-metrics.js';
export { collectWorkerMetrics, WorkerMetrics, type WorkerMetricsOptions } from './metrics/worker-metrics.js';
export { JobFailedError, ResultTimeoutError, ResultUnavailableError } from './results/errors.js';
export { REPLY_TUBE_PREFIX } from './results/reply-listener.js';
export { RESULT_TIMEOUT_MS, type ResultJob, type ResultOptions } from './results/result-job.js';
export { DuplicateScheduleError } from './scheduler/registry.js';
export { SCHEDULER_DEFAULTS, Scheduler, type SchedulerEvents, type SchedulerOptions } from './scheduler/scheduler.js';
export type { CatchUp, Schedule, ScheduleOptions } from './scheduler/types.js';
export { KwargsValidationError, PutManyError, UnrecoverableError } from './tasks/errors.js';
export { PUT_DEFAULTS } from './tasks/put-options.js';
export { JobQueue, type JobQueueOptions } from './tasks/queue.js';
export {
  type KwargsIssue,
  type KwargsSchema,
  type KwargsValidation,
  type SchemaInput,
  type SchemaOutput,
  type StandardSchemaIssue,
  type StandardSchemaResult,
  type StandardSchemaV1,
  validateKwargs,
} from './tasks/schema.js';
export type {
  BackoffOptions,
  KwargsOf,
  LinkArgs,
  PipeArgs,
  PutDefaults,
  PutManyOptions,
  PutOptions,
  Putter,
  RateLimit,
  ResultPutOptions,
  SchemaPutArgs,
  SchemaPutter,
  SchemaTaskDecorator,
  TaskContext,
  TaskDecorator,
  TaskFunction,
  TaskOptions,
  TaskResult,
} from './tasks/types.js';
export { BACKOFF_DEFAULTS } from './worker/backoff.js';
export type { BuryReason, DeleteReason, JobEvent, StopResult, WorkerEvents } from './worker/events.js';
export { WORKER_DEFAULTS, type WorkerOptions } from './worker/options.js';
export { TaskTimeoutError } from './worker/process-job.js';
export { type StopOptions, Worker, type WorkerState } from './worker/worker.js';
