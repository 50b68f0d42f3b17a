/**
 * putMany's batch: every item is checked before the first is sent (bad input at item 500 puts nothing),
 * and the memory it holds is bounded, not proportional to the batch.
 *
 * The first pass encodes every item: that is the check (JSON-ness with the path, the schema on the
 * kwargs as the worker will see them, the body's size in bytes). The bodies of the first window are
 * kept (they are all sent at once, so the window holds them anyway), and so are later ones while the
 * kept bodies add up to at most {@link HELD_BYTES}; past that, a body is dropped once measured and
 * encoded again when the window reaches it. A batch of up to 64 MiB of bodies, or one no longer than
 * its window, is thus encoded once, as before, while a batch of 3,000 jobs of 60 KB holds its first
 * window (63 MB at the default 1024) instead of every body (~185 MB).
 */
import type { PutBody } from '../beanstalk/encode.js';
import { PutOutcomeUnknownError } from '../beanstalk/errors.js';
import { assertBodyLength } from '../beanstalk/validate.js';
import { encodeCallText } from '../envelope/envelope.js';
import { KwargsValidationError, PutManyError } from './errors.js';
import { type PutCallbacks, toPutBody } from './put-sender.js';
import { isThenable, type KwargsValidation, validateKwargs } from './schema.js';
import type { TaskMetadata } from './types.js';

/**
 * How many bytes of encoded bodies a putMany keeps from its check to its send (the first window's are
 * kept whatever their size). Below it (400,000 jobs of ~150 bytes, 8,000 of 8 KB) each item is encoded
 * once; past it, items are encoded twice, so that memory stays flat. 64 MiB is what the default window
 * of 1024 puts holds in flight at 60 KB a job anyway; with 16 MiB, 4,000 jobs of 8 KB were encoded
 * twice for half of them, and putMany measured below put() in flight.
 */
export const HELD_BYTES = 64 * 1024 * 1024;

/** A schema result kept for a valid item whose output nobody will use. */
const VALID: KwargsValidation = { ok: true, value: undefined };

/** A checked putMany batch: the bodies kept, and the size of every body. */
export class PutManyBatch {
  /** How many items the batch has. */
  readonly length: number;
  /** The schema's output for each item, when asked for (inline puts run the task with it). */
  readonly values: readonly unknown[] | undefined;
  readonly #metadata: TaskMetadata;
  readonly #kwargsList: readonly unknown[];
  readonly #sizes: number[];
  /** Bodies kept from the check; each is released when taken. */
  readonly #held: (PutBody | undefined)[];

  private constructor(
    metadata: TaskMetadata,
    kwargsList: readonly unknown[],
    sizes: number[],
    held: (PutBody | undefined)[],
    values: unknown[] | undefined,
  ) {
    this.#metadata = metadata;
    this.#kwargsList = kwargsList;
    this.#sizes = sizes;
    this.#held = held;
    this.values = values;
    this.length = kwargsList.length;
  }

  /**
   * Checks every item: encodes it (a TypeError names the item and the path), and checks it with the
   * task's schema, if any (the first invalid item rejects with a KwargsValidationError that names it).
   * `keepValues` keeps the schema's outputs (memory proportional to the batch: for inline puts only);
   * the first `window` bodies are kept whatever their size; `heldBytes` is there for tests.
   */
  static async check(
    metadata: TaskMetadata,
    kwargsList: readonly unknown[],
    options: { readonly keepValues: boolean; readonly window: number; readonly heldBytes?: number },
  ): Promise<PutManyBatch> {
    const { keepValues, window, heldBytes = HELD_BYTES } = options;
    const sizes: number[] = [];
    const held: (PutBody | undefined)[] = [];
    const checks: (KwargsValidation | Promise<KwargsValidation>)[] | undefined = metadata.options.schema === undefined ? undefined : [];
    let total = 0;
    for (const [index, kwargs] of kwargsList.entries()) {
      const encoded = atItem(index, () => encodeCallText(metadata.name, metadata.tube, kwargs ?? {}));
      const size = Buffer.byteLength(encoded.text, 'utf8');
      sizes.push(size);
      total += size;
      held.push(index < window || total <= heldBytes ? toPutBody(encoded.text, size) : undefined);
      if (checks !== undefined) {
        // The schema checks the copy the body was written from: the kwargs as the worker will see them.
        const checked = validateKwargs(metadata, encoded.kwargs);
        // A valid item's output is dropped unless asked for, so memory does not grow with the batch.
        const kept = (result: KwargsValidation): KwargsValidation => (keepValues || !result.ok ? result : VALID);
        checks.push(isThenable(checked) ? checked.then(kept) : kept(checked));
      }
    }
    const values = checks === undefined ? undefined : await firstInvalid(metadata, checks);
    return new PutManyBatch(metadata, kwargsList, sizes, held, keepValues ? values : undefined);
  }

  /** Checks every body against the server's limit, naming the first item over it. */
  assertSizes(maxJobSize: number): void {
    for (const [index, size] of this.#sizes.entries()) {
      atItem(index, () => assertBodyLength(size, maxJobSize));
    }
  }

  /**
   * The body of item `index`: the one kept from the check (released here), or the item encoded again.
   * Encoding again reads the kwargs a second time: it checks them again, and a body whose size changed
   * since the check (a getter or a toJSON that answers differently) is refused rather than sent unchecked
   * by the schema.
   */
  body(index: number): PutBody {
    const kept = this.#held[index];
    if (kept !== undefined) {
      this.#held[index] = undefined;
      return kept;
    }
    const { text } = atItem(index, () => encodeCallText(this.#metadata.name, this.#metadata.tube, this.#kwargsList[index] ?? {}));
    const size = Buffer.byteLength(text, 'utf8');
    const checked = this.#sizes[index] as number;
    if (size !== checked) {
      throw new TypeError(
        `putMany: item ${index}: its kwargs changed between the check of the batch and the put (a ${checked}-byte body, then ${size} bytes); a getter or a toJSON answered differently`,
      );
    }
    return toPutBody(text, size);
  }
}

/** Awaits the schema's results; the first invalid item, in order, rejects. Resolves to the outputs. */
async function firstInvalid(metadata: TaskMetadata, checks: readonly (KwargsValidation | Promise<KwargsValidation>)[]): Promise<unknown[]> {
  const settled = checks.some(isThenable) ? await Promise.all(checks) : (checks as KwargsValidation[]);
  return settled.map((checked, index) => {
    if (checked.ok) return checked.value;
    const error = new KwargsValidationError(metadata, checked.issues);
    error.message = `putMany: item ${index}: ${error.message}`;
    throw error;
  });
}

/** Runs `check` for item `index` of a putMany; an error it throws names the item. */
export function atItem<T>(index: number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof Error) error.message = `putMany: item ${index}: ${error.message}`;
    throw error;
  }
}

/**
 * Puts the batch's bodies with at most `window` puts unanswered, each body taken (or encoded) only when
 * its put starts. On the first failure (a put, or a body that cannot be made) no new put is started; the
 * ones in flight are awaited, and a PutManyError says which items were put and which may have been.
 */
export function putWindowed(put: (body: PutBody, done: PutCallbacks) => void, batch: PutManyBatch, window: number): Promise<string[]> {
  if (batch.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => new WindowRun(put, batch, window, resolve, reject).launch());
}

/** One putMany's window: which item is next, how many are in flight, the ids so far, the first failure. */
class WindowRun {
  readonly ids: (string | undefined)[];
  readonly #unknown: number[] = [];
  #next = 0;
  #active = 0;
  #failed: { index: number; error: unknown } | undefined;
  #finished = false;

  constructor(
    readonly put: (body: PutBody, done: PutCallbacks) => void,
    readonly batch: PutManyBatch,
    readonly window: number,
    readonly resolve: (ids: string[]) => void,
    readonly reject: (error: PutManyError) => void,
  ) {
    this.ids = new Array(batch.length).fill(undefined);
  }

  /** Starts puts while the window has room. */
  launch(): void {
    const { batch } = this;
    while (this.#failed === undefined && this.#active < this.window && this.#next < batch.length) {
      const index = this.#next;
      this.#next += 1;
      let body: PutBody;
      try {
        body = batch.body(index);
      } catch (error) {
        // Set now, not in a callback: the loop must stop launching at this item.
        this.#failed = { index, error };
        break;
      }
      this.#active += 1;
      // One small object per item settles it from its reply: no promise, no closures.
      this.put(body, new WindowItem(this, index));
    }
    if (this.#active === 0 && (this.#failed !== undefined || this.#next >= batch.length)) this.#finish();
  }

  /** Item `index` was put as job `id`. */
  landed(index: number, id: string): void {
    this.ids[index] = id;
    this.#land();
  }

  /** Item `index` failed: no new put starts; the batch rejects once the window has emptied. */
  failedAt(index: number, error: unknown): void {
    this.#failed ??= { index, error };
    if (error instanceof PutOutcomeUnknownError) this.#unknown.push(index);
    this.#land();
  }

  #land(): void {
    this.#active -= 1;
    if (this.#active === 0 && (this.#failed !== undefined || this.#next >= this.batch.length)) this.#finish();
    else this.launch();
  }

  #finish(): void {
    // A put may reject synchronously (refused before it was written), so #land can finish the batch
    // inside launch(), which then finds it finished too.
    if (this.#finished) return;
    this.#finished = true;
    const failed = this.#failed;
    if (failed)
      this.reject(
        new PutManyError(
          this.ids,
          failed.index,
          failed.error,
          this.#unknown.sort((a, b) => a - b),
        ),
      );
    else this.resolve(this.ids as string[]);
  }
}

/** The callbacks of one item of a {@link WindowRun}. */
class WindowItem implements PutCallbacks {
  constructor(
    readonly run: WindowRun,
    readonly index: number,
  ) {}

  resolve(id: string): void {
    this.run.landed(this.index, id);
  }

  reject(error: unknown): void {
    this.run.failedAt(this.index, error);
  }
}
