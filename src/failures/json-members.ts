/**
 * Finding one member of a JSON object in its text, so that it can be replaced without re-encoding the
 * rest: JSON.parse then JSON.stringify would rewrite numbers past 2^53, `1.0`, escapes and spacing that
 * a producer in another language chose.
 */

/** Where a member's value sits in the text: `text.slice(start, end)` is the value's JSON. */
export interface MemberSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * The span of the value of the top-level member `key` of the JSON object in `text`; `'absent'` when
 * the object has no such member; null when `text` is not a JSON object or names `key` more than once
 * (which of the two a reader believes is not defined).
 */
export function findTopLevelMember(text: string, key: string): MemberSpan | 'absent' | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  // The text is valid JSON from here on, so the scan below only has to tell members apart.
  let index = skipSpace(text, 0) + 1; // past '{'
  let found: MemberSpan | undefined;
  for (;;) {
    index = skipSpace(text, index);
    if (text[index] === '}') break;
    const keyEnd = endOfString(text, index);
    const name = JSON.parse(text.slice(index, keyEnd)) as string;
    index = skipSpace(text, keyEnd) + 1; // past ':'
    const start = skipSpace(text, index);
    const end = endOfValue(text, start);
    if (name === key) {
      if (found) return null;
      found = { start, end };
    }
    index = skipSpace(text, end);
    if (text[index] === ',') index += 1;
  }
  return found ?? 'absent';
}

function skipSpace(text: string, from: number): number {
  let index = from;
  while (index < text.length) {
    const char = text.charCodeAt(index);
    // JSON's whitespace: space, tab, line feed, carriage return.
    if (char !== 0x20 && char !== 0x09 && char !== 0x0a && char !== 0x0d) break;
    index += 1;
  }
  return index;
}

/** The index just past the string that starts (with its quote) at `from`. */
function endOfString(text: string, from: number): number {
  let index = from + 1;
  while (index < text.length) {
    const char = text[index];
    if (char === '\\') index += 2;
    else if (char === '"') return index + 1;
    else index += 1;
  }
  return index;
}

/** The index just past the value that starts at `from`. */
function endOfValue(text: string, from: number): number {
  const first = text[from];
  if (first === '"') return endOfString(text, from);
  if (first === '{' || first === '[') {
    let depth = 0;
    let index = from;
    while (index < text.length) {
      const char = text[index];
      if (char === '"') {
        index = endOfString(text, index);
        continue;
      }
      if (char === '{' || char === '[') depth += 1;
      else if (char === '}' || char === ']') {
        depth -= 1;
        if (depth === 0) return index + 1;
      }
      index += 1;
    }
    return index;
  }
  // A number, true, false or null: up to the next delimiter.
  let index = from;
  while (index < text.length && !',}] \t\n\r'.includes(text[index] as string)) index += 1;
  return index;
}
