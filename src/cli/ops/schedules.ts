/**
 * `bsworker schedules`: the schedules the jobs directory declares, each with its next run as its
 * marker on the server says, and the active scheduler. Marker and info bodies come from the server:
 * untrusted, so every text shown is escaped for the terminal.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { URL_ENV } from '../../beanstalk/address.js';
import { loadJobs } from '../../loader/load-jobs.js';
import { listSchedules } from '../../scheduler/registry.js';
import { readSchedulesStatus, type SchedulesStatus } from '../../scheduler/status.js';
import { colors, type Output, printJson, printTable, terminalSafeText } from '../output.js';
import { jsonOption, opsAction, urlOf, urlOption } from './common.js';

/** `bsworker schedules --json`: see {@link SchedulesStatus}. */
export type SchedulesJson = SchedulesStatus;

function printStatus(output: Output, status: SchedulesStatus): void {
  const c = colors(output);
  const safe = terminalSafeText;
  const { active } = status;
  if (active === null) output.print(`${c.yellow('no active scheduler')} (on ${status.server})`);
  else if (!active.holding)
    output.print(
      `${c.yellow('no active scheduler')} (on ${status.server}): the last one, ${safe(active.host)} pid ${active.pid}, no longer holds its lease ${active.lease}`,
    );
  else
    output.print(
      `active scheduler: ${safe(active.host)} pid ${active.pid} since ${safe(active.since)} (lease ${active.lease} on ${status.server})`,
    );
  if (status.schedules.length === 0) {
    output.print('no schedule is declared');
    return;
  }
  const next = (entry: SchedulesStatus['schedules'][number]): string => {
    if (entry.marker === 'reserved') return 'being put now';
    const when = entry.nextRun ?? 'never';
    if (entry.marker === 'not armed') return `${when} (not yet armed)`;
    return entry.marker === 'ready' ? `${when} (due)` : when;
  };
  printTable(
    output,
    ['NAME', 'CRON', 'TIMEZONE', 'TASK', 'TUBE', 'NEXT RUN'],
    status.schedules.map((entry) => [
      safe(entry.name),
      safe(entry.cron),
      safe(entry.timezone),
      safe(`${entry.task.tube}:${entry.task.name}`),
      safe(entry.tube),
      next(entry),
    ]),
  );
}

/** Registers `bsworker schedules`. */
export function registerSchedulesCommand(program: Command, output: Output): void {
  program
    .command('schedules')
    .description('list the schedules the jobs directory declares, their next run and the active scheduler')
    .option('-j, --jobs <dir>', 'directory whose modules declare the schedules', './jobs')
    .addOption(jsonOption())
    .addOption(urlOption())
    .action(
      opsAction(async (options: { jobs: string; json?: boolean; url?: string }, command: Command) => {
        const url = urlOf(command, options);
        // The jobs modules create their JobQueues at import: they must not reach for another server.
        if (url !== undefined) process.env[URL_ENV] = url;
        await loadJobs(resolve(options.jobs));
        const status = await readSchedulesStatus(url, listSchedules());
        if (options.json) printJson(output, status);
        else printStatus(output, status);
      }),
    );
}
