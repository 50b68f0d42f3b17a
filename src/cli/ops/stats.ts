/** Placeholder: filled in by the operating-commands work. */
import type { Command } from 'commander';
import type { Output } from '../output.js';

/** Registers the command(s) of this file. */
export function registerStatsCommands(_program: Command, _output: Output): void {}
