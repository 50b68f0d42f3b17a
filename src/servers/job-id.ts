/**
 * Job ids across several servers. beanstalkd numbers jobs per server, so `42` names a job only when
 * there is one server; with several, an id is qualified with its server's name: `127.0.0.1:11301/42`.
 * With one server ids stay bare, exactly as before, so nothing changes for a single-server deployment.
 */

/** `name/id`: the id of job `id` on server `name`. */
export function qualifyId(serverName: string, id: string): string {
  return `${serverName}/${id}`;
}

/**
 * Splits a job id into its server name (undefined for a bare id) and its local id. The split is at the
 * last `/`, so a name may hold anything but a slash (IPv6 names are bracketed: `[::1]:11300/7`).
 */
export function splitJobId(text: string): { readonly server: string | undefined; readonly id: string } {
  const slash = text.lastIndexOf('/');
  return slash < 0 ? { server: undefined, id: text } : { server: text.slice(0, slash), id: text.slice(slash + 1) };
}
