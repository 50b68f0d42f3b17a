/**
 * The client's only way to the server: the JSON API, authenticated by the session cookie (sent by the
 * browser), state-changing calls carrying the CSRF token the shell page put in its `<meta>` tag.
 */
import type {
  JobPage,
  JobReport,
  ProgressReading,
  PutOptions,
  PutResult,
  RequeueJobResult,
  SchedulesReading,
  ServersReply,
  TasksReply,
  TubeReport,
  TubesReport,
  WorkersReply,
} from './types.js';

/** An API call that was answered with an error. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  /** The API's `issues` (a put's schema problems), when it gave any. */
  readonly issues: readonly { readonly path: readonly (string | number)[]; readonly message: string }[];

  constructor(status: number, code: string, message: string, issues: ApiError['issues'] = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
}

/** Calls the API; a 401 (session over) goes back to the login page. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? null : JSON.stringify(body),
  });
  const data = (await response.json().catch(() => null)) as {
    error?: { code?: string; message?: string; issues?: ApiError['issues'] };
  } | null;
  if (response.status === 401) {
    window.location.assign('/login');
    throw new ApiError(401, 'UNAUTHORIZED', 'logged out');
  }
  if (!response.ok) {
    const issues = Array.isArray(data?.error?.issues) ? data.error.issues : [];
    throw new ApiError(response.status, data?.error?.code ?? 'ERROR', data?.error?.message ?? response.statusText, issues);
  }
  return data as T;
}

const enc = encodeURIComponent;

/** The API's routes the dashboard uses. */
export const api = {
  servers: () => call<ServersReply>('GET', '/api/servers'),
  tubes: () => call<TubesReport>('GET', '/api/tubes'),
  tube: (tube: string) => call<TubeReport>('GET', `/api/tubes/${enc(tube)}`),
  /** A page of one server's jobs; `server` is needed only with several servers. */
  jobs: (tube: string, state: string, limit = 50, server?: string) =>
    call<JobPage>(
      'GET',
      `/api/tubes/${enc(tube)}/jobs?state=${enc(state)}&limit=${limit}${server === undefined ? '' : `&server=${enc(server)}`}`,
    ),
  /** A search: `filters` holds state, func_name, q, scan, limit (empty ones left out). */
  find: (tube: string, filters: Readonly<Record<string, string>>) => {
    const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value !== '')).toString();
    return call<JobPage>('GET', `/api/tubes/${enc(tube)}/jobs${query === '' ? '' : `?${query}`}`);
  },
  tasks: () => call<TasksReply>('GET', '/api/tasks'),
  workers: () => call<WorkersReply>('GET', '/api/workers'),
  progress: () => call<ProgressReading>('GET', '/api/progress'),
  schedules: () => call<SchedulesReading>('GET', '/api/schedules'),
  put: (tube: string, funcName: string, kwargs: unknown, options: PutOptions) =>
    call<PutResult>('POST', `/api/tubes/${enc(tube)}/jobs`, { func_name: funcName, kwargs, options }),
  requeueJob: (id: string) => call<RequeueJobResult>('POST', `/api/jobs/${enc(id)}/requeue`),
  job: (id: string) => call<JobReport>('GET', `/api/jobs/${enc(id)}`),
  kickTube: (tube: string, bound: number) => call<{ kicked: number }>('POST', `/api/tubes/${enc(tube)}/kick`, { bound }),
  pause: (tube: string, seconds: number) => call<unknown>('POST', `/api/tubes/${enc(tube)}/pause`, { seconds }),
  resume: (tube: string) => call<unknown>('POST', `/api/tubes/${enc(tube)}/resume`),
  kickJob: (id: string) => call<unknown>('POST', `/api/jobs/${enc(id)}/kick`),
  deleteJob: (id: string) => call<unknown>('DELETE', `/api/jobs/${enc(id)}`),
  requeue: (tube: string, from: string) => call<{ requeued: number }>('POST', `/api/tubes/${enc(tube)}/requeue`, { from }),
  logout: () => call<unknown>('POST', '/logout'),
};
