/** Every operating command (everything but the worker itself), registered on the root program. */
import type { Command } from 'commander';
import type { Output } from '../output.js';
import { registerBuriedCommand } from './buried.js';
import { registerDeleteCommand } from './delete.js';
import { registerKickCommands } from './kick.js';
import { registerPauseCommands } from './pause.js';
import { registerPeekCommand } from './peek.js';
import { registerPutCommand } from './put.js';
import { registerRequeueCommand } from './requeue.js';
import { registerStatsCommands } from './stats.js';
import { registerTopCommand } from './top.js';

/** Adds the operating commands to `program`. */
export function registerOperatingCommands(program: Command, output: Output): void {
  registerStatsCommands(program, output);
  registerPeekCommand(program, output);
  registerPutCommand(program, output);
  registerDeleteCommand(program, output);
  registerKickCommands(program, output);
  registerBuriedCommand(program, output);
  registerRequeueCommand(program, output);
  registerPauseCommands(program, output);
  registerTopCommand(program, output);
}
