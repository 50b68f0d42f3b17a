/**
 * Reading workers' `/metrics` (the Prometheus text `bsworker --metrics-port` serves), so that
 * `bsworker serve --worker-metrics URL,...` can show each worker's state and counts in the API and the
 * dashboard without a Prometheus server. Only bsworker's own series are read; the rest is skipped.
 */

/** One worker endpoint as read now. */
export interface WorkerReading {
  /** The URL it was read from. */
  readonly url: string;
  /** True when the endpoint answered with metrics. */
  readonly reachable: boolean;
  /** Why it could not be read; null when it was. */
  readonly error: string | null;
  /** `bsworker_worker_up`: 1 while reserving jobs (summed over a supervisor's children); null when unread. */
  readonly workersUp: number | null;
  /** `bsworker_jobs_active`: jobs held now. */
  readonly active: number | null;
  /** `bsworker_jobs_total` summed by outcome (completed, failed, retried, buried, ...). */
  readonly jobs: Readonly<Record<string, number>>;
  /** `bsworker_jobs_total` by tube, then by outcome. */
  readonly tubes: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** `bsworker_reconnects_total`. */
  readonly reconnects: number | null;
}

/** One sample of the text format: `name{label="value",...} 12`. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The most text read from one endpoint: a worker's own metrics are a few KiB. */
const MAX_BYTES = 1 << 20;

/** Parses the Prometheus text format's sample lines (comments and malformed lines are skipped). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[4]);
    if (!Number.isFinite(value)) continue;
    const labels: Record<string, string> = {};
    // Label values are quoted with \\, \" and \n escaped.
    for (const label of (match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1] as string, labels, value });
  }
  return samples;
}

/** What one endpoint's text says about its worker(s). */
export function readingOf(url: string, text: string): WorkerReading {
  const jobs: Record<string, number> = Object.create(null);
  const tubes: Record<string, Record<string, number>> = Object.create(null);
  let workersUp: number | null = null;
  let active: number | null = null;
  let reconnects: number | null = null;
  for (const { name, labels, value } of parseSamples(text)) {
    if (name === 'bsworker_jobs_total') {
      const outcome = labels.outcome ?? 'unknown';
      jobs[outcome] = (jobs[outcome] ?? 0) + value;
      const tube = labels.tube ?? '';
      tubes[tube] ??= Object.create(null) as Record<string, number>;
      const byOutcome = tubes[tube] as Record<string, number>;
      byOutcome[outcome] = (byOutcome[outcome] ?? 0) + value;
    } else if (name === 'bsworker_worker_up') workersUp = (workersUp ?? 0) + value;
    else if (name === 'bsworker_jobs_active') active = (active ?? 0) + value;
    else if (name === 'bsworker_reconnects_total') reconnects = (reconnects ?? 0) + value;
  }
  return { url, reachable: true, error: null, workersUp, active, jobs, tubes, reconnects };
}

/** Reads one endpoint within `timeoutMs`; never throws (an unreachable worker is a reading too). */
export async function readWorker(url: string, timeoutMs: number): Promise<WorkerReading> {
  const unread = (error: string): WorkerReading => ({
    url,
    reachable: false,
    error,
    workersUp: null,
    active: null,
    jobs: {},
    tubes: {},
    reconnects: null,
  });
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!response.ok) return unread(`HTTP ${response.status}`);
    const length = Number(response.headers.get('content-length'));
    if (Number.isFinite(length) && length > MAX_BYTES) return unread(`the metrics are larger than ${MAX_BYTES} bytes`);
    const text = await response.text();
    if (text.length > MAX_BYTES) return unread(`the metrics are larger than ${MAX_BYTES} bytes`);
    return readingOf(url, text);
  } catch (error) {
    return unread(error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error));
  }
}

/**
 * Checks a `--worker-metrics` URL: http(s) with a host, no credentials. Throws a TypeError naming it.
 */
export function checkWorkerMetricsUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`Expected a worker metrics URL like http://127.0.0.1:9464/metrics, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`Expected an http or https URL, got ${JSON.stringify(value)}`);
  if (url.username !== '' || url.password !== '')
    throw new TypeError(`A worker metrics URL must not carry credentials: ${JSON.stringify(value)}`);
  return url.href;
}
