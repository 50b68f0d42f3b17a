/**
 * fivebeans' own bundled worker (`fivebeans/lib/worker.js`, the base of its `beanworker` command) with a
 * no-op handler: the peer bsworker's single-slot drain is compared with.
 *
 * Usage: node --import tsx bench/peers/fivebeans-worker.ts <port> <tube>
 *
 * How it works (read from lib/worker.js): one connection; `watch` the tubes (and `ignore default` with
 * `ignoreDefault`), then a loop of `reserve-with-timeout <timeout>` (default 10 s), JSON.parse of the
 * body, a look-up of `handlers[job.type]`, `handler.work(job.payload, callback)`, and `delete` on
 * `callback('success')` before the next reserve. Bodies are `{"type": ..., "payload": ...}` (or
 * `[tube, {type, payload}]`). It logs nothing itself: it emits events, and only warnings are shown here.
 */
import { createRequire } from 'node:module';

interface Handler {
  readonly type: string;
  work(payload: unknown, callback: (action: 'success' | 'release' | 'bury', delay?: number) => void): void;
}

interface FiveBeansWorker {
  start(tubes: string[]): void;
  on(event: string, listener: (payload: unknown) => void): this;
}

type FiveBeansWorkerClass = new (options: {
  id: string;
  host: string;
  port: number;
  handlers: Record<string, Handler>;
  ignoreDefault: boolean;
}) => FiveBeansWorker;

// CommonJS, and without types: loaded through require so that its own module format is untouched.
const require = createRequire(import.meta.url);
const Worker = require('fivebeans/lib/worker.js') as FiveBeansWorkerClass;

const [port, tube] = process.argv.slice(2);
if (!port || !tube) {
  console.error('usage: fivebeans-worker.ts <port> <tube>');
  process.exit(2);
}

const noop: Handler = {
  type: 'noop',
  work(_payload, callback) {
    callback('success');
  },
};

const worker = new Worker({ id: 'bench', host: '127.0.0.1', port: Number(port), handlers: { noop }, ignoreDefault: true });
worker.on('error', (error) => {
  console.error('fivebeans worker error:', error);
  process.exit(1);
});
worker.on('warning', (warning) => console.error('fivebeans worker warning:', JSON.stringify(warning)));
worker.start([tube]);
