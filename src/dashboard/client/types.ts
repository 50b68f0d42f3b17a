/**
 * The parts of the API's replies the client reads: a subset of src/admin/types.ts (which the client's
 * build, a separate program with the DOM library, cannot import). The OpenAPI document is the contract.
 */

export interface TubeCounts {
  readonly ready: number;
  readonly urgent: number;
  readonly reserved: number;
  readonly delayed: number;
  readonly buried: number;
  readonly total: number;
  readonly deletes: number;
  readonly watching: number;
  readonly waiting: number;
  readonly pausedSecondsLeft: number;
}

export interface TubeReport {
  readonly name: string;
  readonly totals: TubeCounts;
  readonly servers: readonly (TubeCounts & { readonly server: string })[];
  /** Only with several servers configured: those that could not be read. */
  readonly unavailable?: readonly string[];
}

export interface TubesReport {
  readonly at: string;
  readonly tubes: readonly TubeReport[];
  readonly unavailable: readonly string[];
}

export interface ServerReport {
  readonly server: string;
  readonly up: boolean;
  readonly error: string | null;
  readonly stats: {
    readonly version: string;
    readonly uptimeSeconds: number;
    readonly connections: number;
    readonly draining: boolean;
    readonly counters: Readonly<Record<string, number>>;
  } | null;
}

export interface ServersReply {
  readonly servers: readonly ServerReport[];
}

export interface FailureEntry {
  readonly reason: string;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly attempt: number;
  readonly kicks: number;
  readonly worker?: { readonly host: string; readonly pid: number };
  readonly at: string;
}

/** A link still to run; `kwargs` only in a job read by id. */
export interface FlowLink {
  readonly func_name: string;
  readonly tube: string;
  readonly kwargs?: unknown;
  readonly pipe?: string | null;
}

/** A job's chain, group, chord and reply (see src/flows/describe.ts). */
export interface FlowDescription {
  readonly summary: string;
  readonly chain: { readonly position: number; readonly of: number; readonly nextCount: number; readonly next: readonly FlowLink[] } | null;
  readonly group: { readonly tube: string; readonly barrier: string; readonly callback: string | null } | null;
  readonly chord: { readonly tube: string; readonly membersLeft: number | null } | null;
  readonly reply: boolean;
  readonly malformed: string | null;
}

export interface JobReport {
  readonly id: string;
  readonly server: string;
  readonly tube: string;
  readonly state: string;
  readonly priority: number;
  readonly ageSeconds: number;
  readonly delaySeconds: number;
  readonly ttrSeconds: number;
  readonly timeLeftSeconds: number;
  readonly reserves: number;
  readonly timeouts: number;
  readonly releases: number;
  readonly buries: number;
  readonly kicks: number;
  readonly envelope: { readonly func_name: string; readonly tube: string | null; readonly kwargs: unknown; readonly meta?: unknown } | null;
  readonly raw: string | null;
  readonly decodeError: string | null;
  readonly history: { readonly failures: readonly FailureEntry[] } | null;
  readonly lastFailure: {
    readonly reason: string;
    readonly name: string;
    readonly message: string;
    readonly stackLine: string | null;
    readonly attempt: number;
    readonly at: string;
  } | null;
  readonly deadLetter: { readonly tube: string | null } | null;
  /** Absent from a server older than this page. */
  readonly flow?: FlowDescription | null;
}

export interface JobPage {
  readonly jobs: readonly JobReport[];
  readonly scanned: number;
  readonly startId: string | null;
  readonly nextCursor: string | null;
  readonly exhausted: boolean;
  readonly stoppedBy: string;
}

export interface TaskDescription {
  readonly name: string;
  readonly priority: number;
  readonly delay: number;
  readonly ttr: number;
  readonly retries: number;
  readonly backoff: { readonly type: string; readonly delaySeconds: number; readonly maxDelaySeconds: number; readonly jitter: boolean };
  readonly timeoutMs: number | null;
  readonly redact: readonly string[];
  readonly schema: { readonly vendor: string; readonly jsonSchema: Readonly<Record<string, unknown>> | null } | null;
}

export interface TasksReply {
  readonly loaded: boolean;
  readonly tubes: readonly { readonly tube: string; readonly tasks: readonly TaskDescription[] }[];
}

export interface PutResult {
  readonly id: string;
  readonly server: string;
  readonly tube: string;
}

export interface WorkerReading {
  readonly url: string;
  readonly reachable: boolean;
  readonly error: string | null;
  readonly workersUp: number | null;
  readonly active: number | null;
  readonly jobs: Readonly<Record<string, number>>;
  readonly tubes: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly reconnects: number | null;
}

/** One running job's latest progress (`GET /api/progress`); its value is job data: untrusted. */
export interface ProgressEntry {
  readonly worker: string;
  readonly jobId: string;
  readonly tube: string | null;
  readonly task: string | null;
  readonly value: unknown;
  readonly truncated: boolean;
  readonly at: string;
}

export interface ProgressReading {
  readonly jobs: readonly ProgressEntry[];
  readonly workers: readonly { readonly url: string; readonly reachable: boolean; readonly error: string | null }[];
}

export interface WorkersReply {
  readonly workers: readonly WorkerReading[];
}

export interface RequeueJobResult {
  readonly id: string;
  readonly deadLetterId: string;
  readonly tube: string;
  readonly deadLetterDeleted: boolean;
}

/** The options of a put from the Tasks form. */
export interface PutOptions {
  readonly priority?: number;
  readonly delay?: number;
  readonly ttr?: number;
}

/** `GET /api/schedules`. */
export interface SchedulesReading {
  readonly server: string;
  readonly active: {
    readonly host: string;
    readonly pid: number;
    readonly since: string;
    readonly lease: string;
    readonly holding: boolean;
  } | null;
  readonly schedules: readonly {
    readonly name: string;
    readonly cron: string;
    readonly timezone: string;
    readonly task: { readonly tube: string; readonly name: string } | null;
    readonly tube: string;
    readonly nextRun: string | null;
    readonly marker: 'delayed' | 'ready' | 'reserved' | 'not armed';
    readonly declared: boolean;
  }[];
}
