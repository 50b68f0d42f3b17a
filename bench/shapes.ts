/**
 * The kwargs of the body-size curve: at each size, an array of ~100-byte records (the expensive shape:
 * many small objects to check and write) and one long string (the cheap one: a text, an HTML page).
 */

/** The sizes of the curve, in bytes of kwargs JSON. */
export const SIZE_CURVE = [
  { label: '100B', bytes: 100 },
  { label: '1KB', bytes: 1_024 },
  { label: '8KB', bytes: 8_192 },
  { label: '32KB', bytes: 32_768 },
  { label: '60KB', bytes: 61_440 },
] as const;

/** The two shapes of kwargs. */
export type Shape = 'records' | 'string';

/** The shapes, in the order the curve measures them. */
export const SHAPES: readonly Shape[] = ['records', 'string'];

/**
 * Kwargs of `shape` whose JSON is about `bytes` long: `{ items: [record, ...] }` with records of ~100
 * bytes (at least one), or `{ text: '...' }`.
 */
export function kwargsOf(shape: Shape, bytes: number): Record<string, unknown> {
  if (shape === 'string') return { text: 'lorem ipsum dolor sit amet '.repeat(Math.ceil(bytes / 27)).slice(0, Math.max(1, bytes - 11)) };
  const items: unknown[] = [];
  const kwargs = { items };
  for (let i = 0; items.length === 0 || JSON.stringify(kwargs).length < bytes - 50; i += 1) {
    items.push({
      id: 10_000 + i,
      name: `user-${i}`,
      email: `user${i}@example.com`,
      active: i % 2 === 0,
      score: i * 1.5,
      tags: ['a', 'bb'],
    });
  }
  return kwargs;
}
