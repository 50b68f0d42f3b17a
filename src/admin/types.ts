/**
 * The shapes the admin layer returns: plain JSON-serialisable objects, the same for the CLI's `--json`
 * (which prints a documented subset of some of them), the HTTP API and the dashboard.
 *
 * Servers are a list and every result that comes from one server names it in a `server` field
 * (`host:port`). With several servers configured, the results that cover them all also carry
 * `unavailable` (the servers that did not answer, whose part is missing); with one server they have
 * exactly the fields they always had. Job ids and cursors are opaque strings: pass back what a result
 * gave. With one server a job id is beanstalkd's own (`"42"`); with several it is `host:port/42`.
 */
import type { CarriedCounters, FailureEntry } from '../failures/record.js';
import type { FlowDescription } from '../flows/describe.js';

/** The states beanstalkd reports for a job. */
export type JobState = 'ready' | 'delayed' | 'reserved' | 'buried';

/** The states {@link Admin.jobs} and `peek` can look for. */
export const JOB_STATES: readonly JobState[] = Object.freeze(['ready', 'delayed', 'reserved', 'buried']);

/** Server-wide job counts by state. */
export interface JobCounts {
  /** Jobs waiting to be reserved (`current-jobs-ready`). */
  readonly ready: number;
  /** Ready jobs with a priority below 1024 (`current-jobs-urgent`); a subset of `ready`. */
  readonly urgent: number;
  /** Jobs a worker holds now (`current-jobs-reserved`). */
  readonly reserved: number;
  /** Jobs waiting out their delay (`current-jobs-delayed`). */
  readonly delayed: number;
  /** Jobs set aside until kicked (`current-jobs-buried`). */
  readonly buried: number;
  /** Jobs put since the server started, deleted ones included (`total-jobs`). */
  readonly total: number;
}

/** The server's binlog (`-b DIR`): whether jobs survive a restart. */
export interface BinlogSummary {
  /** False when the server runs without `-b`: every job is lost when it stops. */
  readonly enabled: boolean;
  /** Index of the binlog file being written (`binlog-current-index`); 0 when disabled. */
  readonly currentIndex: number;
  /** Index of the oldest binlog file still needed (`binlog-oldest-index`). */
  readonly oldestIndex: number;
  /** Size at which a binlog file is closed and a new one started (`binlog-max-size`). */
  readonly maxSizeBytes: number;
  /** Records written since the server started (`binlog-records-written`). */
  readonly recordsWritten: number;
  /** Records copied forward to free old files (`binlog-records-migrated`). */
  readonly recordsMigrated: number;
}

/** One server's `stats`, read into named fields. */
export interface ServerStatsReport {
  /** beanstalkd's version string, such as `"1.12"`. */
  readonly version: string;
  readonly uptimeSeconds: number;
  /** Open client connections, the admin layer's own included (`current-connections`). */
  readonly connections: number;
  readonly jobs: JobCounts;
  /** The largest job body the server accepts, in bytes (`max-job-size`). */
  readonly maxJobSize: number;
  readonly binlog: BinlogSummary;
  /** True after SIGUSR1: the server refuses `put` (`DRAINING`) but still hands out jobs. */
  readonly draining: boolean;
  /**
   * Every numeric field of the `stats` reply, keyed as the server spells it (`cmd-put`, `cmd-delete`,
   * `job-timeouts`, `total-connections`, ...): beanstalkd's own counters, for rates and metrics.
   */
  readonly counters: Readonly<Record<string, number>>;
}

/** One configured server: whether it answered, and its stats when it did. */
export interface ServerReport {
  /** `host:port`. */
  readonly server: string;
  /** True when the server answered `stats` just now. */
  readonly up: boolean;
  /** Why it is down (one line), or null when up. */
  readonly error: string | null;
  /** Null when down. */
  readonly stats: ServerStatsReport | null;
}

/** The one shape of a tube's counters, on one server or summed over all of them. */
export interface TubeCounts {
  readonly ready: number;
  /** Ready jobs with a priority below 1024; a subset of `ready`. */
  readonly urgent: number;
  readonly reserved: number;
  readonly delayed: number;
  readonly buried: number;
  /** Jobs ever put into the tube, deleted ones included (`total-jobs`): not a sum of the other counts. */
  readonly total: number;
  /** Deletes ever done in the tube (`cmd-delete`): with `total`, the "done" and "in" rates. */
  readonly deletes: number;
  /** Connections using the tube (producers, `current-using`). */
  readonly using: number;
  /** Connections watching the tube (`current-watching`); every connection watches `default`. */
  readonly watching: number;
  /** Connections blocked in a reserve on the tube (`current-waiting`): idle workers. */
  readonly waiting: number;
  /** The pause set with `pause-tube`, in seconds (`pause`); 0 when not paused. In totals: the longest. */
  readonly pauseSeconds: number;
  /** Seconds until the pause ends (`pause-time-left`); 0 when not paused. In totals: the longest. */
  readonly pausedSecondsLeft: number;
}

/** A tube's counters on one server. */
export interface TubeOnServer extends TubeCounts {
  readonly server: string;
}

/** One tube: its counters per server, and summed. */
export interface TubeReport {
  readonly name: string;
  /** Summed over the servers that have the tube (pauses: the longest). */
  readonly totals: TubeCounts;
  /** Only the servers that have the tube, in the configured order. */
  readonly servers: readonly TubeOnServer[];
  /**
   * Only from {@link Admin.tube} with several servers configured: the servers that could not be read
   * (their counts are missing above); empty when all answered.
   */
  readonly unavailable?: readonly string[];
}

/** Every tube, read at one moment. */
export interface TubesReport {
  /** When the reading started, ISO 8601 with milliseconds. */
  readonly at: string;
  /** Sorted by name. */
  readonly tubes: readonly TubeReport[];
  /** Servers that could not be read (their tubes are missing above); empty when all answered. */
  readonly unavailable: readonly string[];
}

/** Servers and tubes in one reading: what `stats`, `top` and a dashboard's front page show. */
export interface Overview extends TubesReport {
  readonly servers: readonly ServerReport[];
}

/** A job body decoded as a bsworker envelope. */
export interface JobEnvelope {
  /** The task name the body asks for. */
  readonly func_name: string;
  /** The tube the producer wrote into the body (not necessarily the tube the job is in), or null if absent. */
  readonly tube: string | null;
  readonly kwargs: Record<string, unknown>;
  /**
   * The body's `meta` field, present only when the body has one (failures, dead-letter records, flows),
   * as the body has it but for two members: a reply's `token` reads `"[redacted]"`, and in lists (not a
   * job read by id) a chain's `next` links are left out (`flow` names them).
   */
  readonly meta?: unknown;
}

/** The failure history a job body carries (`meta.failures`, `meta.carried`), every field checked. */
export interface JobHistory {
  /** Oldest first (see the README's "Failure records"). */
  readonly failures: readonly FailureEntry[];
  /** The counters of the jobs this copy replaced; absent when it replaced none. */
  readonly carried?: CarriedCounters;
}

/** The most recent failure of a job, cut to what a list shows. */
export interface FailureSummary {
  /** Why: the worker's reason (`failed`, `crashed`, `invalid`, `unregistered`, `undecodable`, `dead-lettered`, ...). */
  readonly reason: string;
  /** The error's name, e.g. `TypeError`. */
  readonly name: string;
  readonly message: string;
  /** The first line of the stack below the message (`at charge (/app/jobs/pay.js:10:5)`), or null. */
  readonly stackLine: string | null;
  /** The attempt that failed (1 for the first run). */
  readonly attempt: number;
  /** Kicks the job had had when it failed. */
  readonly kicks: number;
  /** When, ISO 8601. */
  readonly at: string;
}

/** What a dead letter says about where it came from (`meta.dead_letter`). */
export interface DeadLetterSummary {
  /** The tube the job failed in: where `requeue` puts it back. Null when the record has none. */
  readonly tube: string | null;
  /** The failed job's id on its server. */
  readonly jobId: string | null;
  readonly name: string | null;
  readonly message: string | null;
  readonly attempts: number | null;
  readonly kicks: number | null;
  /** When it was moved, ISO 8601. */
  readonly at: string | null;
}

/**
 * One job: its state and counters (`stats-job`, times in whole seconds) and its decoded body. Exactly
 * one of `envelope` and `raw` is non-null.
 */
export interface JobReport {
  /** Opaque; beanstalkd's decimal id while there is one server. */
  readonly id: string;
  readonly server: string;
  /** The tube the job is in. */
  readonly tube: string;
  /** `ready`, `delayed`, `reserved` or `buried`. */
  readonly state: string;
  /** 0 is the most urgent. */
  readonly priority: number;
  readonly ageSeconds: number;
  /** The delay the job was put or released with. */
  readonly delaySeconds: number;
  readonly ttrSeconds: number;
  /** Seconds until a delayed job becomes ready or a reserved job's TTR runs out; 0 otherwise. */
  readonly timeLeftSeconds: number;
  /**
   * `stats-job`'s counters over the job's whole life: for a copy buried with its failure record, its
   * own plus those it carries (`history.carried`) from the jobs it replaced, as the worker counts them.
   */
  readonly reserves: number;
  readonly timeouts: number;
  readonly releases: number;
  readonly buries: number;
  readonly kicks: number;
  /** The decoded body, or null when the body is not a bsworker envelope. */
  readonly envelope: JobEnvelope | null;
  /** The whole body when it is not an envelope, as UTF-8 (bytes that are not UTF-8 become U+FFFD). */
  readonly raw: string | null;
  /** Why the body is not an envelope, or null. */
  readonly decodeError: string | null;
  /** The failure history kept in the body (`meta.failures`), or null when it has none. */
  readonly history: JobHistory | null;
  /** The last entry of `history`, summarised; null without one. */
  readonly lastFailure: FailureSummary | null;
  /** Set when the job is a dead letter (`meta.dead_letter`). */
  readonly deadLetter: DeadLetterSummary | null;
  /**
   * The chain, group, chord and reply the body's `meta` asks for, read as a worker reads them (a
   * malformed one says so in `malformed`); null when it asks for none. See the README's "HTTP API".
   */
  readonly flow: FlowDescription | null;
}

/** Why a {@link JobPage} scan stopped. */
export type ScanStop =
  /** `limit` jobs were found; more may lie below `nextCursor`. */
  | 'limit'
  /** The scan examined its maximum of ids (`scan`); more may lie below `nextCursor`. */
  | 'scan-bound'
  /** The time bound ran out; more may lie below `nextCursor`. */
  | 'deadline'
  /** The scan reached id 1: there is nothing below. */
  | 'end';

/** One page of a tube's jobs in a state, newest (highest id) first. See the README's "Listing jobs". */
export interface JobPage {
  /** The server scanned (a page covers one server). */
  readonly server: string;
  readonly tube: string;
  /** The state looked for; null for every state. */
  readonly state: JobState | null;
  /** Newest first. A job that changed state or was deleted between the scan and its `peek` is left out. */
  readonly jobs: readonly JobReport[];
  /** Job ids examined by this page (`stats-job` commands sent). */
  readonly scanned: number;
  /** The id the scan started at (the highest id found, or just below the cursor); null when there was none. */
  readonly startId: string | null;
  /** Pass as `cursor` for the next page (ids below it); null when `exhausted`. */
  readonly nextCursor: string | null;
  /** True when the scan reached id 1: there are no more pages. */
  readonly exhausted: boolean;
  readonly stoppedBy: ScanStop;
}

/** A job put by {@link Admin.put}. */
export interface PutResult {
  readonly id: string;
  readonly server: string;
  readonly tube: string;
  readonly func_name: string;
  readonly priority: number;
  readonly delaySeconds: number;
  readonly ttrSeconds: number;
}

/** One tube's part of a kick, on one server. */
export interface KickedTube {
  readonly server: string;
  readonly tube: string;
  /** Buried jobs kicked to ready. */
  readonly kicked: number;
  /** The buried count before the kick minus `kicked` (jobs buried meanwhile are not counted). */
  readonly stillBuried: number;
}

/** What {@link Admin.kick} did. */
export interface KickResult {
  /** The total kicked, over all tubes and servers. */
  readonly kicked: number;
  /**
   * One entry per tube and server, sorted by tube name then in the configured order. With a tube: one
   * per server that answered (kicked 0 when nothing was buried); for every tube, only those that had
   * buried jobs.
   */
  readonly tubes: readonly KickedTube[];
  /** Only with several servers configured: the servers that could not be reached (nothing kicked there). */
  readonly unavailable?: readonly string[];
}

/** What {@link Admin.kickJob} did. */
export interface KickJobResult {
  readonly id: string;
  readonly server: string;
  /** Always true: a job that cannot be kicked is an error, not a `false`. */
  readonly kicked: true;
  /** The state the job was kicked from; it is ready now. */
  readonly from: 'buried' | 'delayed';
  readonly tube: string;
}

/** What {@link Admin.deleteJob} did. */
export interface DeleteJobResult {
  readonly id: string;
  readonly server: string;
  readonly tube: string;
  /** The state the job was in. */
  readonly state: string;
}

/** What {@link Admin.deleteBuried} did. */
export interface DeleteBuriedResult {
  readonly tube: string;
  readonly deleted: number;
  /** The deleted jobs' ids, oldest first, the first {@link MAX_LISTED_IDS} of them. */
  readonly ids: readonly string[];
  /** Buried jobs left in the tube afterwards, over all servers. */
  readonly stillBuried: number;
  /** Only with several servers configured: what each server that answered deleted and kept. */
  readonly servers?: readonly { readonly server: string; readonly deleted: number; readonly stillBuried: number }[];
  /** Only with several servers configured: the servers that could not be reached (nothing deleted there). */
  readonly unavailable?: readonly string[];
}

/** Results list at most this many ids, so deleting a million jobs does not return a million ids. */
export const MAX_LISTED_IDS = 1_000;

/** A tube's pause on one server, as the server reports it right after the command. */
export interface PauseOnServer {
  readonly server: string;
  /** The pause now set, in seconds; 0 after a resume. */
  readonly pauseSeconds: number;
  /** Seconds until the pause ends (rounded down); 0 when not paused. */
  readonly pausedSecondsLeft: number;
  /** Seconds that were left of an earlier pause, which this one replaced; 0 when there was none. */
  readonly previousSecondsLeft: number;
}

/** What {@link Admin.pause} and {@link Admin.resume} did: the first server's figures, then each server's. */
export interface PauseResult {
  readonly tube: string;
  readonly pauseSeconds: number;
  readonly pausedSecondsLeft: number;
  readonly previousSecondsLeft: number;
  readonly servers: readonly PauseOnServer[];
  /** Only with several servers configured: the servers that could not be reached (not paused there). */
  readonly unavailable?: readonly string[];
}

/** One dead letter put back by {@link Admin.requeue}. */
export interface RequeuedJob {
  readonly server: string;
  /** The dead letter's id (deleted once the new job was inserted). */
  readonly deadLetterId: string;
  /** The new job's id in the original tube. */
  readonly id: string;
  readonly priority: number;
  readonly ttrSeconds: number;
}

/** A dead letter whose new job was inserted but which could not be deleted: it is there twice now. */
export interface RequeueDuplicate {
  readonly server: string;
  readonly deadLetterId: string;
  /** The new job's id. */
  readonly id: string;
  /** Why the delete failed. */
  readonly error: string;
}

/** A dead letter the server refused to take back (its body grew past `max-job-size`): left as it was. */
export interface RequeueFailure {
  readonly server: string;
  readonly deadLetterId: string;
  readonly error: string;
}

/** What {@link Admin.requeueJob} did: one dead letter put back into the tube it failed in. */
export interface RequeueJobResult {
  readonly server: string;
  /** The dead letter's id. */
  readonly deadLetterId: string;
  /** The new job's id in the original tube. */
  readonly id: string;
  /** The original tube, which the letter's record names. */
  readonly tube: string;
  readonly priority: number;
  readonly ttrSeconds: number;
  /**
   * False when the new job was inserted but the letter could not be deleted after (it was reserved or
   * deleted in between, or the connection was lost): the job is then in both tubes, never in neither.
   */
  readonly deadLetterDeleted: boolean;
}

/** What {@link Admin.requeue} did. */
export interface RequeueResult {
  /** The server scanned (a requeue covers one server). */
  readonly server: string;
  /** The dead-letter tube. */
  readonly from: string;
  /** The original tube the letters went back to. */
  readonly tube: string;
  readonly requeued: number;
  /** The first {@link MAX_LISTED_IDS}, in the order they were put. */
  readonly jobs: readonly RequeuedJob[];
  /** Letters put back but still in the dead-letter tube (see {@link RequeueDuplicate}). */
  readonly duplicates: readonly RequeueDuplicate[];
  /** Letters the server would not take back; they are still in the dead-letter tube, unchanged. */
  readonly failed: readonly RequeueFailure[];
  /** Ready jobs of `from` left alone: their original tube is another one. */
  readonly otherTube: number;
  /** Ready jobs of `from` left alone: not a dead letter bsworker can put back (no record, or no original). */
  readonly notDeadLetters: number;
  /** Ids examined, as in {@link JobPage}. */
  readonly scanned: number;
  /** Pass as `cursor` to go on below; null when `exhausted`. */
  readonly nextCursor: string | null;
  readonly exhausted: boolean;
  readonly stoppedBy: ScanStop;
}
