// The reporter `npm test` uses. On a terminal it is node's own `spec`. Elsewhere (CI, a pipe, a log
// file) node would print TAP, thousands of lines with the failures lost in them, so this prints a dot
// per passing test, then every failure in full (where it is, its error with its stack and cause, and
// what its file wrote to stdout and stderr), and last a line `<n> passed, <n> failed, <n> skipped`,
// alone, for CI to read. The exit code stays node's: non-zero when anything failed.
import { relative } from 'node:path';
import { spec } from 'node:test/reporters';
import { inspect } from 'node:util';

/** Dots per line, so that a log viewer never gets one enormous line. */
const DOTS_PER_LINE = 80;

/** A file path as the reader typed it: relative to where `npm test` runs. */
function shortPath(file) {
  return file ? relative(process.cwd(), file) : '(no file)';
}

/**
 * The error a failure carries: node wraps what the test threw in an ERR_TEST_FAILURE whose `cause`
 * is the real error (an AssertionError prints its diff in its message). Hooks and cancellations
 * have no cause worth more than their own message.
 */
function describeError(error) {
  const cause = error?.cause ?? error;
  if (typeof cause === 'string') return cause;
  if (typeof cause?.stack === 'string') {
    // The runner's own frames (node:internal/test_runner, async_hooks) say nothing about the test.
    cause.stack = cause.stack
      .split('\n')
      .filter((line) => !/^\s+at (?:async )?(?:\S+ \()?node:|^\s+at async Promise\.all \(index/.test(line))
      .join('\n');
  }
  return inspect(cause, { depth: 6, breakLength: 120 });
}

function indent(text, prefix) {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : prefix + line))
    .join('\n');
}

/**
 * The compact reporter: a dot per passed test, `s` per skipped or todo one, `F` per failure, then the
 * failures in full and the closing count line.
 */
export async function* compact(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let column = 0;
  /** Per file, the names of the tests being run, by nesting: their path for a failure's title. */
  const running = new Map();
  /** Per file, what it wrote outside the reporter's events. */
  const output = new Map();
  const failures = [];

  const mark = (char) => {
    column += 1;
    if (column === DOTS_PER_LINE) {
      column = 0;
      return `${char}\n`;
    }
    return char;
  };

  for await (const event of source) {
    const data = event.data ?? {};
    switch (event.type) {
      case 'test:start': {
        const names = running.get(data.file) ?? [];
        names.length = data.nesting;
        names.push(data.name);
        running.set(data.file, names);
        break;
      }
      case 'test:stdout':
      case 'test:stderr':
        output.set(data.file, (output.get(data.file) ?? '') + data.message);
        break;
      case 'test:pass':
        // A suite passes when its tests do: only the tests themselves are counted.
        if (data.details?.type === 'suite') break;
        if (data.skip !== undefined || data.todo !== undefined) {
          skipped += 1;
          yield mark('s');
        } else {
          passed += 1;
          yield mark('.');
        }
        break;
      case 'test:fail': {
        const failureType = data.details?.error?.failureType;
        // A suite whose tests failed adds nothing to their own failures; a suite whose hook failed
        // carries the hook's error, and its tests fail as cancelled.
        if (failureType === 'subtestsFailed') break;
        if (data.details?.type !== 'suite') {
          failed += 1;
          yield mark('F');
        }
        const names = (running.get(data.file) ?? []).slice(0, data.nesting);
        // A file that failed outside any test (it threw while loading, say) is named by its path.
        const title = data.name === data.file ? [] : [...names, data.name];
        failures.push({ file: data.file, title, failureType, error: data.details?.error });
        break;
      }
      default:
        break;
    }
  }

  if (column !== 0) yield '\n';
  if (failures.length > 0) {
    yield `\nFailures (${failures.length}):\n`;
    const shownOutput = new Set();
    for (const [index, failure] of failures.entries()) {
      const where = [shortPath(failure.file), ...failure.title].join(' > ');
      yield `\n${index + 1}) ${where}\n`;
      if (failure.failureType === 'cancelledByParent') {
        yield '   cancelled: its suite or one of its hooks failed (listed as the suite)\n';
      } else {
        yield `${indent(describeError(failure.error), '   ')}\n`;
      }
      const written = output.get(failure.file);
      if (written && !shownOutput.has(failure.file)) {
        shownOutput.add(failure.file);
        yield `   --- what ${shortPath(failure.file)} wrote to stdout and stderr ---\n${indent(written.trimEnd(), '   ')}\n`;
      }
    }
    yield '\n';
  }
  yield `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}

/** The reporter node's `--test-reporter` loads: `spec` on a terminal, the compact one elsewhere. */
export default process.stdout.isTTY ? new spec() : compact;
