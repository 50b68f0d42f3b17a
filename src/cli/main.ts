/** The `bsworker` process: runs the program and turns its outcome into an exit code and one error line. */
import { CommanderError } from 'commander';
import { EXIT, exitCodeFor, formatError, formatErrorDetail } from './errors.js';
import { buildProgram } from './program.js';
import { handleClosedOutput } from './stdout.js';

/** Runs `bsworker` with `argv` (as in process.argv) and exits. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  // Before anything is printed: `bsworker stats | head -1` must end quietly, not with an EPIPE stack.
  handleClosedOutput();
  let code: number = EXIT.ok;
  const program = buildProgram({
    print: (line) => process.stdout.write(`${line}\n`),
    isTTY: process.stdout.isTTY === true,
    exit: (exitCode) => {
      code = exitCode;
    },
  });
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has printed its own message; help and version are successes.
      code = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else {
      process.stderr.write(`${formatError(error)}\n`);
      for (const line of formatErrorDetail(error)) process.stderr.write(`${line}\n`);
      code = exitCodeFor(error);
    }
  }
  // Exit explicitly: task modules may hold open handles (their own JobQueue connections, timers).
  process.exit(code);
}
