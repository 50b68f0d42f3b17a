// Function form: wrapping a function returns a Putter. `taskOne({...})` runs it here and now;
// `await taskOne.put({...})` sends it to the `task_tube_one` tube for a worker.
import { queue } from './queue.js';

export const taskOne = queue.task('task_tube_one')(async function taskOne(kw: { a: string; times?: number }) {
  return kw.a.repeat(kw.times ?? 1).length;
});
