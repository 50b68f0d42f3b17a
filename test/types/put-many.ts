// Compile-time checks of putMany's types, type-checked by `tsc -p tsconfig.check.json` (npm run
// typecheck). Never run. Every line under a @ts-expect-error must fail to compile, and an unused marker
// is itself an error, so a wrong kwargs type or option that compiled would fail the type check.
import { JobQueue, type PutManyOptions } from '../../src/index.js';

const queue = new JobQueue({ inline: true });

const sendOne = queue.task('types_put_many')(async function sendOne(kw: { to: string; n?: number }) {
  return kw.to.length + (kw.n ?? 0);
});

const noArgs = queue.task('types_put_many')(async function noArgsMany() {
  return 1;
});

class Emails {
  @queue.task('types_put_many_emails')
  static async welcome(kw: { to: string; name: string }): Promise<void> {
    void kw;
  }
}

export async function correct(): Promise<void> {
  const ids: string[] = await sendOne.putMany([{ to: 'a' }, { to: 'b', n: 2 }]);
  await sendOne.putMany([], { priority: 1, delay: 0, ttr: 30, window: 64 });
  const list: readonly { to: string }[] = [{ to: 'c' }];
  await sendOne.putMany(list);
  const options: PutManyOptions = { window: 1 };
  await sendOne.putMany(list, options);
  await noArgs.putMany([{}, {}]);
  const typed: string[] = await queue.putMany(Emails.welcome, [{ to: 'a@b.c', name: 'Ann' }], { window: 8 });
  await queue.putMany(sendOne, [{ to: 'd' }]);
  void ids;
  void typed;
}

export async function wrong(): Promise<void> {
  // @ts-expect-error -- `to` must be a string
  await sendOne.putMany([{ to: 1 }]);
  // @ts-expect-error -- `to` is required in every item
  await sendOne.putMany([{ to: 'a' }, { n: 2 }]);
  // @ts-expect-error -- unknown kwargs key
  await sendOne.putMany([{ to: 'a', cc: 'b' }]);
  // @ts-expect-error -- an array of kwargs, not one kwargs object
  await sendOne.putMany({ to: 'a' });
  // @ts-expect-error -- unknown option
  await sendOne.putMany([{ to: 'a' }], { prio: 1 });
  // @ts-expect-error -- `window` is a number
  await sendOne.putMany([{ to: 'a' }], { window: '8' });
  // @ts-expect-error -- a task that takes no kwargs takes only empty ones
  await noArgs.putMany([{ x: 1 }]);
  // @ts-expect-error -- queue.putMany checks a decorated method's kwargs...
  await queue.putMany(Emails.welcome, [{ to: 'a@b.c' }]);
  // @ts-expect-error -- ... rejects unknown keys in them...
  await queue.putMany(Emails.welcome, [{ to: 'a@b.c', name: 'Ann', extra: true }]);
  // @ts-expect-error -- ... and unknown options
  await queue.putMany(Emails.welcome, [{ to: 'a@b.c', name: 'Ann' }], { windowSize: 8 });
  // @ts-expect-error -- the ids are strings
  const numbers: number[] = await sendOne.putMany([{ to: 'a' }]);
  void numbers;
}
