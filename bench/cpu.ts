/** The CPU time another process has used, from `/proc/<pid>/stat` (Linux only). */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat`: 100 on every Linux this runs on (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

/**
 * User plus system CPU time of `pid` in milliseconds, or undefined where /proc is not available. On a
 * machine shared with other work, a drain's CPU time per job moves much less than its wall-clock rate:
 * it is what tells a small per-job cost (the metrics) from the machine's noise.
 */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its `)`.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15, i.e. 12 and 13 after the state (field 3).
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}
