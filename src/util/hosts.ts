/** Telling loopback addresses from others, for every listener bsworker opens (the HTTP API, metrics). */
import { isIP } from 'node:net';

/** True for 127.0.0.0/8, ::1 (bracketed or not) and `localhost`: names no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}
