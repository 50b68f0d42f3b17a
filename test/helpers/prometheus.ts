/**
 * Reading Prometheus text exposition (format 0.0.4) in tests, strictly: every family has its HELP and
 * TYPE before its samples, every sample line is well formed, counters end in `_total`, histograms have
 * cumulative buckets ending in `+Inf` equal to `_count`. A malformed scrape fails the parse.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';

/** One sample line. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A parsed scrape. */
export interface Scrape {
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
  /** The one sample of `name` whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of `name` whose labels include `labels`. */
  all(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    assert.ok(match, `malformed labels in ${JSON.stringify(line)}`);
    const [, key = '', raw = ''] = match;
    assert.ok(!(key in labels), `label ${key} twice in ${JSON.stringify(line)}`);
    labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

const familyOf = (name: string, types: ReadonlyMap<string, string>): string | undefined => {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && types.get(name.slice(0, -suffix.length)) === 'histogram') return name.slice(0, -suffix.length);
  }
  return undefined;
};

const includes = (labels: Readonly<Record<string, string>>, wanted: Record<string, string>): boolean =>
  Object.entries(wanted).every(([key, value]) => labels[key] === value);

/** Parses and checks a whole exposition. */
export function parseExposition(text: string): Scrape {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const name = line.slice(7).split(' ')[0] ?? '';
      assert.match(name, NAME);
      assert.ok(!helps.has(name), `HELP twice for ${name}`);
      helps.add(name);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name = '', type = ''] = line.slice(7).split(' ');
      assert.ok(helps.has(name), `TYPE of ${name} before its HELP`);
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type), `type ${type}`);
      assert.ok(!types.has(name), `TYPE twice for ${name}`);
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
      types.set(name, type);
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment ${JSON.stringify(line)}`);
    const match = SAMPLE.exec(line);
    assert.ok(match, `malformed sample ${JSON.stringify(line)}`);
    const [, name = '', , labelText = '', valueText = ''] = match;
    assert.ok(familyOf(name, types), `sample ${name} before its TYPE`);
    const value = valueText === '+Inf' ? Number.POSITIVE_INFINITY : valueText === '-Inf' ? Number.NEGATIVE_INFINITY : Number(valueText);
    assert.ok(valueText === 'NaN' || !Number.isNaN(value), `value of ${JSON.stringify(line)}`);
    samples.push({ name, labels: parseLabels(labelText, line), value });
  }
  const all = (name: string, labels: Record<string, string> = {}): Sample[] =>
    samples.filter((sample) => sample.name === name && includes(sample.labels, labels));
  checkHistograms(types, all);
  return {
    types,
    samples,
    all,
    value(name, labels = {}) {
      const found = all(name, labels);
      assert.ok(found.length <= 1, `${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}

function checkHistograms(types: ReadonlyMap<string, string>, all: (name: string) => Sample[]): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, Sample[]>();
    for (const bucket of all(`${family}_bucket`)) {
      const { le, ...rest } = bucket.labels;
      assert.ok(le !== undefined, `${family}_bucket without le`);
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), bucket]);
    }
    for (const [key, buckets] of groups) {
      let previous = -1;
      let bound = Number.NEGATIVE_INFINITY;
      for (const bucket of buckets) {
        const le = bucket.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(bucket.labels.le);
        assert.ok(le > bound, `${family} buckets in increasing order (${key})`);
        assert.ok(bucket.value >= previous, `${family} buckets cumulative (${key})`);
        bound = le;
        previous = bucket.value;
      }
      assert.equal(buckets.at(-1)?.labels.le, '+Inf', `${family} ends with +Inf (${key})`);
      const labels = JSON.parse(key) as Record<string, string>;
      const count = all(`${family}_count`).find((s) => JSON.stringify(s.labels) === JSON.stringify(labels));
      assert.equal(count?.value, previous, `${family}_count equals the +Inf bucket (${key})`);
    }
  }
}

/** GETs `url` and parses the body; asserts a 200 with the Prometheus text content type. */
export async function scrape(url: string): Promise<Scrape> {
  const { status, headers, body } = await httpGet(url);
  assert.equal(status, 200, `GET ${url}: ${status} ${body.slice(0, 200)}`);
  assert.match(String(headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(body);
}

/** One GET, bounded: 5 s. */
export function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}
