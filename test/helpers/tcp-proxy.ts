// A TCP proxy on 127.0.0.1 in front of a real beanstalkd, for tests that must act at an exact command:
// stop a worker just before a given command reaches the server, or make the server look older.
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** What the proxy does with a chunk a client sent. */
export type ClientVerdict = 'forward' | 'drop';

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** Looks at each chunk a client sends before it is forwarded; `drop` discards it (and what follows). */
  readonly onClientData?: (chunk: Buffer) => ClientVerdict;
  /** Rewrites each chunk the server sends back. */
  readonly rewriteServerData?: (chunk: Buffer) => Buffer;
}

/** A running proxy. */
export interface Proxy {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free port. */
export async function startProxy(targetPort: number, options: ProxyOptions = {}): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    let dropping = false;
    client.on('data', (chunk: Buffer) => {
      if (dropping) return;
      if ((options.onClientData?.(chunk) ?? 'forward') === 'drop') {
        dropping = true;
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(options.rewriteServerData ? options.rewriteServerData(chunk) : chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  return {
    url: `127.0.0.1:${address.port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
