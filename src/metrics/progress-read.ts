/**
 * Reading workers' `/progress` (see ./progress.ts), for `bsworker serve --worker-metrics URL,...`: the
 * progress URL sits next to the metrics URL (`http://h:9464/metrics` -> `http://h:9464/progress`).
 * What a worker answers is untrusted (any process can listen on that port): the size is bounded, every
 * entry is checked, and every value is cut again to the board's cap.
 */
import { capValue, PROGRESS_DEFAULTS, type ProgressEntry } from './progress.js';

/** One running job's progress, with the worker endpoint it came from. */
export interface WorkerProgressEntry extends ProgressEntry {
  /** The `--worker-metrics` URL of the worker that runs it. */
  readonly worker: string;
}

/** One worker endpoint's part of a progress reading. */
export interface WorkerProgressSource {
  /** The `--worker-metrics` URL. */
  readonly url: string;
  readonly reachable: boolean;
  /** Why it could not be read; null when it was. */
  readonly error: string | null;
  /** Jobs with progress it listed. */
  readonly jobs: number;
  /** Under `--processes`: children that did not answer their supervisor in time (their jobs are missing). */
  readonly childrenMissing: number;
}

/** What `GET /api/progress` answers. */
export interface ProgressReading {
  /** Every worker's running jobs with progress, oldest report first. */
  readonly jobs: readonly WorkerProgressEntry[];
  /** Every configured worker, reachable or not, in the configured order. */
  readonly workers: readonly WorkerProgressSource[];
}

/** The most text read from one endpoint: 1,000 entries of 1 KiB values, with room. */
const MAX_BYTES = 2 << 20;

/** The `/progress` URL beside a worker's `/metrics` URL. */
export function progressUrlOf(metricsUrl: string): string {
  return new URL('progress', metricsUrl).href;
}

const isText = (value: unknown): value is string => typeof value === 'string';
const nullableText = (value: unknown): string | null => (isText(value) ? value : null);

/** The checked entries of a `/progress` document, or why it is not one. */
export function entriesOf(document: unknown, worker: string): { jobs: WorkerProgressEntry[]; missing: number } | string {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { jobs?: unknown }).jobs)) {
    return 'the answer is not a progress document ({"jobs": [...]})';
  }
  const { jobs, missing } = document as { jobs: unknown[]; missing?: unknown };
  const checked: WorkerProgressEntry[] = [];
  for (const entry of jobs.slice(0, PROGRESS_DEFAULTS.maxJobs)) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { jobId, tube, task, value, truncated, at } = entry as Record<string, unknown>;
    if (!isText(jobId) || jobId === '' || !isText(at)) continue;
    const capped = capValue(value, PROGRESS_DEFAULTS.maxValueBytes);
    checked.push({
      worker,
      jobId: jobId.slice(0, 300),
      tube: nullableText(tube)?.slice(0, 200) ?? null,
      task: nullableText(task)?.slice(0, 1_000) ?? null,
      value: capped.value,
      truncated: truncated === true || capped.truncated,
      at: at.slice(0, 40),
    });
  }
  return { jobs: checked, missing: Number.isSafeInteger(missing) ? (missing as number) : 0 };
}

/** Reads one worker's progress within `timeoutMs`; never throws (an unreachable worker is reported). */
export async function readWorkerProgress(
  url: string,
  timeoutMs: number,
): Promise<{ source: WorkerProgressSource; jobs: WorkerProgressEntry[] }> {
  const unread = (error: string) => ({ source: { url, reachable: false, error, jobs: 0, childrenMissing: 0 }, jobs: [] });
  try {
    const response = await fetch(progressUrlOf(url), { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!response.ok) return unread(`HTTP ${response.status}${response.status === 404 ? ' (a bsworker older than /progress?)' : ''}`);
    const length = Number(response.headers.get('content-length'));
    if (Number.isFinite(length) && length > MAX_BYTES) return unread(`the progress document is larger than ${MAX_BYTES} bytes`);
    const text = await response.text();
    if (text.length > MAX_BYTES) return unread(`the progress document is larger than ${MAX_BYTES} bytes`);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      return unread('the answer is not JSON');
    }
    const read = entriesOf(document, url);
    if (typeof read === 'string') return unread(read);
    return { source: { url, reachable: true, error: null, jobs: read.jobs.length, childrenMissing: read.missing }, jobs: read.jobs };
  } catch (error) {
    return unread(error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error));
  }
}

/** Reads every worker in parallel, each within `timeoutMs`. */
export async function readProgress(urls: readonly string[], timeoutMs: number): Promise<ProgressReading> {
  const reads = await Promise.all(urls.map((url) => readWorkerProgress(url, timeoutMs)));
  const jobs = reads.flatMap((read) => read.jobs).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return { jobs, workers: reads.map((read) => read.source) };
}
