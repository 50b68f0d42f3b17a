/**
 * A TCP server on 127.0.0.1 that plays a peer of the client under test (beanstalkd, or something that
 * is not): `onSocket` gets each accepted connection and decides what, and when, to answer. `close`
 * destroys every connection and stops listening.
 */
import { type AddressInfo, createServer, type Socket } from 'node:net';

/** A started peer: its port, and how to stop it. */
export interface TcpPeer {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a peer on a free loopback port. */
export async function startPeer(onSocket: (socket: Socket) => void): Promise<TcpPeer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
