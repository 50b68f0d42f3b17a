/**
 * Putting one job in the standard envelope, checked exactly as the library checks a put (func_name,
 * kwargs that JSON keeps as they are, put options, the body against the server's `max-job-size`), and
 * then by the caller's {@link KwargsCheck} (a task's schema, when the jobs directory is loaded), all
 * before a byte is sent.
 */
import { ConnectionError } from '../beanstalk/errors.js';
import { assertBodySize } from '../beanstalk/validate.js';
import { encodeEnvelope } from '../envelope/envelope.js';
import { splitJobId } from '../servers/job-id.js';
import type { PutRouter } from '../servers/put-router.js';
import { resolvePutParams, validatePutOptions } from '../tasks/put-options.js';
import { InvalidInputError, toAdminError } from './errors.js';
import { checkTube } from './input.js';
import type { AdminServer } from './servers.js';
import type { PutResult } from './types.js';

/** What to put: the task, its kwargs, and the put options (each defaults as in `PUT_DEFAULTS`). */
export interface PutInput {
  readonly tube: string;
  /** The registered task name. */
  readonly funcName: string;
  /** A plain JSON object. */
  readonly kwargs: Record<string, unknown>;
  /** 0 (most urgent) to 4294967295. @defaultValue 1024 */
  readonly priority?: number;
  /** Seconds before the job is ready. @defaultValue 0 */
  readonly delay?: number;
  /** Seconds a worker may hold the job, at least 2. @defaultValue 60 */
  readonly ttr?: number;
}

/**
 * Checks a job's kwargs before it is put, for example against the registry and a task's schema when a
 * jobs directory is loaded (`bsworker put --jobs`, the HTTP API). Resolves to the kwargs to put (a schema
 * may normalise them); throws an {@link InvalidInputError} to refuse (`UNKNOWN_TASK`, `INVALID_KWARGS`
 * with the issues as `details`).
 */
export type KwargsCheck = (job: {
  readonly tube: string;
  readonly funcName: string;
  readonly kwargs: Record<string, unknown>;
}) => Record<string, unknown> | Promise<Record<string, unknown>>;

/** The checks that need no server: throws {@link InvalidInputError} for anything a put would refuse. */
export function checkPutInput(input: PutInput): void {
  checkTube(input.tube);
  if (typeof input.funcName !== 'string' || input.funcName.trim() === '') {
    throw new InvalidInputError('INVALID_FUNC_NAME', 'func_name must not be empty: give the name the task was registered under');
  }
  try {
    validatePutOptions({
      ...(input.priority === undefined ? {} : { priority: input.priority }),
      ...(input.delay === undefined ? {} : { delay: input.delay }),
      ...(input.ttr === undefined ? {} : { ttr: input.ttr }),
    });
  } catch (error) {
    throw new InvalidInputError('INVALID_OPTION', (error as Error).message);
  }
  encode(input.funcName, input.tube, input.kwargs);
}

function encode(funcName: string, tube: string, kwargs: unknown): Buffer {
  try {
    return encodeEnvelope(funcName, tube, kwargs);
  } catch (error) {
    throw new InvalidInputError('INVALID_KWARGS', (error as Error).message);
  }
}

/** Puts the job on `server` (the check runs first), and says where it went. */
export async function putJob(
  server: AdminServer,
  input: PutInput,
  check: KwargsCheck | undefined,
  formatId: (server: AdminServer, id: string) => string,
): Promise<PutResult> {
  checkPutInput(input);
  const kwargs = check ? await check({ tube: input.tube, funcName: input.funcName, kwargs: input.kwargs }) : input.kwargs;
  const body = encode(input.funcName, input.tube, kwargs);
  const params = resolvePutParams({ priority: input.priority, delay: input.delay, ttr: input.ttr });
  const id = await server.inTube(input.tube, async (connection) => {
    // Checked here too (putInTube does) so that the refusal is an InvalidInputError, not a RangeError.
    try {
      assertBodySize(body, connection.maxJobSize);
    } catch (error) {
      throw new InvalidInputError('JOB_TOO_BIG', (error as Error).message);
    }
    return connection.putInTube(input.tube, body, params);
  });
  return {
    id: formatId(server, id),
    server: server.name,
    tube: input.tube,
    func_name: input.funcName,
    priority: params.priority,
    delaySeconds: params.delaySeconds,
    ttrSeconds: params.ttrSeconds,
  };
}

/**
 * Puts the job through `router` (several servers): checked as {@link putJob} checks it, against the
 * smallest `max-job-size` of the servers that answer, then spread (see `src/servers/put-router.ts`). The
 * id comes back qualified, `host:port/42`.
 */
export async function putRouted(router: PutRouter, input: PutInput, check: KwargsCheck | undefined, deadline: number): Promise<PutResult> {
  checkPutInput(input);
  const kwargs = check ? await check({ tube: input.tube, funcName: input.funcName, kwargs: input.kwargs }) : input.kwargs;
  const body = encode(input.funcName, input.tube, kwargs);
  const params = resolvePutParams({ priority: input.priority, delay: input.delay, ttr: input.ttr });
  const where = router.names.join(',');
  let id: string;
  try {
    try {
      assertBodySize(body, await router.maxJobSize(deadline));
    } catch (error) {
      if (error instanceof RangeError) throw new InvalidInputError('JOB_TOO_BIG', error.message);
      throw error;
    }
    id = await router.put(input.tube, body, params, undefined, deadline);
  } catch (error) {
    throw toAdminError(error, error instanceof ConnectionError ? error.address : where);
  }
  return {
    id,
    server: splitJobId(id).server ?? where,
    tube: input.tube,
    func_name: input.funcName,
    priority: params.priority,
    delaySeconds: params.delaySeconds,
    ttrSeconds: params.ttrSeconds,
  };
}
