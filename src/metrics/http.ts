/**
 * A minimal `/metrics` endpoint over node:http, for the worker (`--metrics-port`), the supervisor and
 * tests. Read-only: GET or HEAD `/metrics` (and the `documents` given, such as the worker's
 * `/progress`); anything else is 404 or 405. The HTTP API of `bsworker serve`
 * mounts a renderer on its own server instead.
 */

import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';

/** One rendering of the metrics: the exposition text and its content type. */
export interface RenderedMetrics {
  readonly contentType: string;
  readonly body: string;
}

/** Produces the metrics for one scrape. */
export type MetricsRenderer = () => Promise<RenderedMetrics>;

/** A renderer over one prom-client registry. */
export function registryRenderer(registry: Registry): MetricsRenderer {
  return async () => ({ contentType: registry.contentType, body: await registry.metrics() });
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free port (see {@link MetricsEndpoint.port}). */
  readonly port: number;
  readonly render: MetricsRenderer;
  /** Called with what a render threw; the scrape gets a 500. */
  readonly onError?: (error: unknown) => void;
  /** More read-only paths beside `/metrics` (`/progress`), each with its renderer. @defaultValue none */
  readonly documents?: Readonly<Record<string, MetricsRenderer>>;
}

/** A renderer of a JSON document. */
export function jsonRenderer(read: () => unknown | Promise<unknown>): MetricsRenderer {
  return async () => ({ contentType: 'application/json; charset=utf-8', body: JSON.stringify(await read()) });
}

/** A listening `/metrics` endpoint. */
export interface MetricsEndpoint {
  readonly host: string;
  /** The port it listens on (the one picked when 0 was asked for). */
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

/** Starts listening; rejects when the address is taken or cannot be bound. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const documents = new Map(Object.entries(options.documents ?? {}));
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    const render = path === '/metrics' ? options.render : documents.get(path);
    if (render === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    render().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        options.onError?.(error);
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('could not render the metrics\n');
      },
    );
  });
  // A scrape is one short request: an idle keep-alive socket must not hold the process's exit.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  let closed: Promise<void> | undefined;
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    host,
    port,
    url: `http://${urlHost}:${port}/metrics`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
