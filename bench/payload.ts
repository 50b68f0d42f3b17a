/** The job every scenario moves: the same ~100-byte kwargs, in bsworker's envelope or fivebeans' format. */
import { encodeEnvelope } from '../src/index.js';

/** The kwargs of every bench job: 96 bytes of JSON, the size of a typical "send this email" job. */
export const KWARGS = Object.freeze({ userId: 48213, email: 'ann@example.com', plan: 'pro', tags: ['welcome', 'trial'], retry: false });

/** The kwargs type of the bench tasks. */
export type BenchKwargs = typeof KWARGS;

/** The name of the no-op task in `bench/jobs/noop.ts`. */
export const NOOP_TASK = 'noop';

/**
 * The body JobQueue would put for `KWARGS` in `tube` (the same encoder), so raw and bsworker puts move
 * the same bytes and the CLI worker can decode what the raw client prefills.
 */
export function envelopeBody(tube: string, funcName = NOOP_TASK): Buffer {
  return encodeEnvelope(funcName, tube, KWARGS);
}

/**
 * The body fivebeans' bundled worker expects, `{ type, payload }` with `type` naming its handler,
 * padded (a field it ignores) to `bytes` so that it moves as many bytes as bsworker's envelope.
 */
export function fivebeansBody(bytes: number, type = NOOP_TASK): Buffer {
  const bare = JSON.stringify({ type, payload: KWARGS, pad: '' });
  const pad = 'x'.repeat(Math.max(0, bytes - Buffer.byteLength(bare)));
  return Buffer.from(JSON.stringify({ type, payload: KWARGS, pad }), 'utf8');
}
