/**
 * Rendezvous (highest random weight) hashing: for a key, every server gets a score from the hash of the
 * key and its name, and the key belongs to the highest score. It is stable (the same key, the same
 * server, in every process, on every run), spreads keys evenly, and when a server is skipped only its
 * own keys move, each to its second choice, rather than every key being reshuffled as `hash % n` would.
 */

/** FNV-1a over the UTF-16 code units of `text`, then murmur3's finaliser so that near keys spread. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The indexes of `names` in the order `key` prefers them: its server first, then its fallbacks. */
export function rankFor(key: string, names: readonly string[]): number[] {
  const scores = names.map((name) => hash32(`${key}\u0000${name}`));
  return names.map((_, index) => index).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
}
