/**
 * The YAML that beanstalkd writes for `stats`, `stats-tube`, `stats-job` and `list-tubes*`: a `---` line,
 * then `key: value` lines or `- item` lines. Parsed here rather than by a general YAML parser because a
 * general one reads tube names such as `1.0`, `0x1A` or `1e3` as numbers, and can throw on a reply from a
 * peer that is not beanstalkd.
 */

/** A `key: value` reply, every value as written (quotes removed): `tube: 1.0` stays `"1.0"`. */
export function parseYamlMap(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of entries(text)) out[key] = unquote(raw);
  return out;
}

/** A `key: value` reply where unquoted numbers become numbers (server-wide `stats`). */
export function parseYamlStats(text: string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, raw] of entries(text)) out[key] = /^-?[0-9]+(\.[0-9]+)?$/.test(raw) ? Number(raw) : unquote(raw);
  return out;
}

function entries(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9_-]+): ?(.*)$/.exec(line.trimEnd());
    if (match) out.push([match[1] ?? '', match[2] ?? '']);
  }
  return out;
}

/** A `- item` reply, every item as a string. */
export function parseYamlList(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const match = /^- (.*)$/.exec(line.trimEnd());
    if (match) out.push(unquote(match[1] ?? ''));
  }
  return out;
}

function unquote(raw: string): string {
  return raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
}
