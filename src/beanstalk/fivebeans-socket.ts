/**
 * The one file that touches fivebeans. bsworker once sent most commands through fivebeans' client; it
 * now writes every command and reads every reply itself (./pipeline.ts), because fivebeans builds each
 * command with several buffer copies, reads replies byte by byte and keeps its reply handlers in an
 * array it shifts, which together cost more CPU per job than everything else in a worker. What is left
 * is fivebeans opening the socket, kept behind this file so that nothing else depends on its internals.
 */
import type { Socket } from 'node:net';
import FiveBeansClient from 'fivebeans/lib/client.js';
import type { ServerAddress } from './address.js';

/** What the socket reports, from the moment it is opened. */
export interface SocketEvents {
  /** Every read; fivebeans' own reader is detached, so nothing else sees the bytes. */
  readonly onData: (chunk: Buffer) => void;
  /** A socket error (a refused connect among them); without a listener it would crash the process. */
  readonly onError: (error: NodeJS.ErrnoException) => void;
  /** The socket has closed, whatever the reason. */
  readonly onClose: () => void;
}

/**
 * Starts connecting to `address` and returns the socket at once; it emits 'connect' when the TCP
 * handshake is done. `events` are attached before anything can be emitted.
 */
export function openSocket(address: ServerAddress, events: SocketEvents): Socket {
  const client = new FiveBeansClient(address.host, address.port);
  // fivebeans re-emits the socket's 'error' and 'close' on the client, so they are listened to there:
  // an 'error' emitted on the client with no listener would throw.
  client.on('error', events.onError);
  client.on('close', () => events.onClose());
  client.connect();
  const socket = client.stream as Socket;
  // Our reader replaces fivebeans' 'data' listener: fivebeans must never see, or buffer, a reply.
  socket.removeAllListeners('data');
  socket.on('data', events.onData);
  return socket;
}
