/**
 * `queue.task(tube)`: one function that works as a wrapper for plain functions and as a decorator for
 * static methods, in both the standard (TC39) and the legacy (`experimentalDecorators`) calling
 * convention, so that users keep whichever their tsconfig has.
 */
import { assertTubeName } from '../beanstalk/validate.js';
import { createLink } from '../flows/links.js';
import { KwargsValidationError } from './errors.js';
import { setTaskMetadata } from './metadata.js';
import { validateTaskOptions } from './put-options.js';
import { type RegisteredTask, registerTask } from './registry.js';
import { isThenable, type KwargsValidation, validateKwargs } from './schema.js';
import type {
  PutDefaults,
  PutManyOptions,
  PutOptions,
  Putter,
  TaskContext,
  TaskDecorator,
  TaskFunction,
  TaskMetadata,
  TaskOptions,
} from './types.js';

/** What the decorator needs from its JobQueue: a way to put a task's job, and an inline run's context. */
export interface TaskPutter {
  putTask(metadata: TaskMetadata, kwargs: unknown, options: PutOptions | undefined): Promise<string>;
  putManyTask(metadata: TaskMetadata, kwargsList: readonly unknown[], options: PutManyOptions | undefined): Promise<string[]>;
  inlineContext(metadata: TaskMetadata): TaskContext;
}

type AnyFunction = (...args: unknown[]) => unknown;

/** Builds the decorator returned by `queue.task(tube, options)`. Validates tube and options at once. */
export function createTaskDecorator(queue: TaskPutter, tube: string, options: TaskOptions = {}): TaskDecorator {
  assertTubeName(tube);
  validateTaskOptions(options);

  function decorate(value: unknown, contextOrKey?: unknown, descriptor?: PropertyDescriptor): unknown {
    if (isStandardContext(contextOrKey)) return decorateStandard(value, contextOrKey);
    if (descriptor !== undefined) return decorateLegacy(value, contextOrKey, descriptor);
    if (contextOrKey === undefined && typeof value === 'function') {
      return register(value as AnyFunction, options.name ?? value.name, () => undefined);
    }
    throw new TypeError(`queue.task('${tube}') expects a function, or to decorate a static method; got ${typeof value}`);
  }

  function decorateStandard(
    value: unknown,
    context: ClassMethodDecoratorContext | { kind: string; name: unknown; static?: boolean },
  ): unknown {
    const where = `@queue.task('${tube}') on \`${String(context.name)}\``;
    if (context.kind !== 'method' || typeof value !== 'function') {
      throw new TypeError(`${where}: only functions and static methods can be tasks, not a ${context.kind}`);
    }
    if (!context.static) {
      throw new TypeError(`${where}: make the method static; a worker has no instance to call it on`);
    }
    const name = options.name ?? (typeof context.name === 'string' ? context.name : '');
    // The class does not exist yet while a standard decorator runs; an initializer hands it over once it
    // does, so the worker can call the method with the right `this`.
    const holder: { thisArg: unknown } = { thisArg: undefined };
    (context as ClassMethodDecoratorContext).addInitializer(function (this: unknown) {
      holder.thisArg = this;
    });
    return register(value as AnyFunction, name, () => holder.thisArg);
  }

  function decorateLegacy(target: unknown, key: unknown, descriptor: PropertyDescriptor): PropertyDescriptor {
    const where = `@queue.task('${tube}') on \`${String(key)}\``;
    if (typeof descriptor.value !== 'function') {
      throw new TypeError(`${where}: only functions and static methods can be tasks`);
    }
    if (typeof target !== 'function') {
      throw new TypeError(`${where}: make the method static; a worker has no instance to call it on`);
    }
    const name = options.name ?? (typeof key === 'string' ? key : '');
    const putter = register(descriptor.value as AnyFunction, name, () => target);
    return { ...descriptor, value: putter };
  }

  function register(fn: AnyFunction, name: string, thisArg: () => unknown): Putter<TaskFunction> {
    if (name === '') {
      throw new TypeError(`queue.task('${tube}'): the function has no name; pass one: queue.task('${tube}', { name: 'sendEmail' })`);
    }
    const metadata: TaskMetadata = Object.freeze({ tube, name, options: Object.freeze({ ...options }) });
    const task: RegisteredTask = {
      tube,
      name,
      fn,
      options: metadata.options,
      run: (kwargs, context) => fn.call(thisArg(), kwargs, context),
    };
    registerTask(task);

    // Called directly, the task runs here and now. A task declared `(kw, ctx: TaskContext)` gets a real
    // context unless the caller passes one: its types allow leaving it out, so it must not be undefined.
    const call = (self: unknown, args: unknown[]): unknown => {
      if (args[1] === undefined) return fn.call(self ?? thisArg(), args[0], queue.inlineContext(metadata), ...args.slice(2));
      return fn.apply(self ?? thisArg(), args);
    };
    const putter = (options.schema === undefined
      ? function (this: unknown, ...args: unknown[]): unknown {
          return call(this, args);
        }
      : function (this: unknown, ...args: unknown[]): Promise<unknown> {
          return callChecked(metadata, args, (checkedArgs) => call(this, checkedArgs));
        }) as unknown as Putter<TaskFunction>;
    Object.defineProperties(putter, {
      name: { value: name },
      schema: { value: options.schema },
      tube: { value: tube, enumerable: true },
      taskName: { value: name, enumerable: true },
      put: { value: (kwargs: unknown, putOptions?: PutOptions) => queue.putTask(metadata, kwargs, putOptions) },
      putMany: {
        value: (kwargsList: readonly unknown[], putOptions?: PutManyOptions) => queue.putManyTask(metadata, kwargsList, putOptions),
      },
      with: { value: (kwargs?: unknown, linkOptions?: PutDefaults) => createLink(metadata, kwargs, undefined, linkOptions) },
      pipe: {
        value: (key: string, kwargs?: unknown, linkOptions?: PutDefaults) => createLink(metadata, kwargs, key, linkOptions),
      },
    });
    setTaskMetadata(metadata, fn, putter);
    return putter;
  }

  return decorate as TaskDecorator;
}

/**
 * A schema task called directly: its kwargs are checked, then the function runs with the schema's
 * output, at once when the schema answered synchronously. Always a promise, since a schema may be async.
 */
function callChecked(metadata: TaskMetadata, args: unknown[], run: (args: unknown[]) => unknown): Promise<unknown> {
  const proceed = (checked: KwargsValidation): unknown => {
    if (!checked.ok) throw new KwargsValidationError(metadata, checked.issues);
    return run([checked.value, ...args.slice(1)]);
  };
  const checked = validateKwargs(metadata, args[0] ?? {});
  if (isThenable(checked)) return checked.then(proceed);
  try {
    return Promise.resolve(proceed(checked));
  } catch (error) {
    return Promise.reject(error);
  }
}

function isStandardContext(value: unknown): value is { kind: string; name: unknown; static?: boolean } {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string';
}
