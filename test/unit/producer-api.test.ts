/**
 * The public API is what src/index.ts exports, and nothing else: internals (the connection, the
 * registry, the metadata key) stay out of it, and every name the README imports from 'bsworker' is in it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import * as api from '../../src/index.js';

/** The runtime exports a user may rely on (types are checked by the compiler, not here). */
const PUBLIC = [
  'BACKOFF_DEFAULTS',
  'BeanstalkError',
  'BuriedOnPutError',
  'CHORD_FALLBACK_SECONDS',
  'FlowStepError',
  'GroupPutError',
  'JobFailedError',
  'REPLY_TUBE_PREFIX',
  'RESULT_TIMEOUT_MS',
  'ResultTimeoutError',
  'ResultUnavailableError',
  'ConnectionError',
  'DeadlineSoonError',
  'DrainingError',
  'DuplicateScheduleError',
  'InternalServerError',
  'JobLoadError',
  'JobQueue',
  'JobTooBigError',
  'KwargsValidationError',
  'NotFoundError',
  'OutOfMemoryError',
  'PUT_DEFAULTS',
  'ProtocolError',
  'SCHEDULER_DEFAULTS',
  'Scheduler',
  'PutManyError',
  'PutOutcomeUnknownError',
  'ServerMetrics',
  'TaskTimeoutError',
  'UnexpectedReplyError',
  'UnrecoverableError',
  'WORKER_DEFAULTS',
  'Worker',
  'WorkerMetrics',
  'collectWorkerMetrics',
  'createLogger',
  'decodeEnvelope',
  'encodeEnvelope',
  'loadJobs',
  'validateKwargs',
  'monitorServer',
  'registryRenderer',
  'startMetricsServer',
];

describe('the public API', () => {
  it('exports exactly the public names, and none of the internals', () => {
    assert.deepEqual(Object.keys(api).sort(), [...PUBLIC].sort());
    for (const internal of ['BeanstalkConnection', 'findTask', 'TASK_METADATA_KEY', 'getTaskMetadata', 'listTasks', 'unregisterTask']) {
      assert.equal(internal in api, false, `${internal} is internal`);
    }
  });

  it('has every name the README imports from bsworker', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const imported = [...readme.matchAll(/import\s*\{([^}]*)\}\s*from\s*'bsworker'/g)].flatMap((match) =>
      (match[1] ?? '')
        .split(',')
        .map((name) => name.trim().replace(/^type\s+/, ''))
        .filter(Boolean),
    );
    assert.ok(imported.length > 0, 'the README has examples');
    // Type-only exports leave no trace at run time: read them from the index's export lists.
    const index = await readFile(new URL('../../src/index.ts', import.meta.url), 'utf8');
    const exported = new Set(
      [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((match) =>
        (match[1] ?? '').split(',').map((name) => name.trim().replace(/^type\s+/, '')),
      ),
    );
    for (const name of PUBLIC) assert.ok(exported.has(name), `the index lists ${name}`);
    for (const name of imported) assert.ok(exported.has(name), `the README imports ${name}, which bsworker does not export`);
  });
});
