// A task that always fails, to show what happens to failures: the worker buries the job; each
// `bsworker kick` runs it again; once it has been kicked --max-kicks times, the next failure deletes
// it and logs its whole body at error level.
import { queue } from './queue.js';

export const chargeCard = queue.task('flaky')(async function chargeCard(kw: { orderId: number; cents: number }) {
  throw new Error(`payment gateway timed out for order ${kw.orderId}`);
});
