// The HTTP API in tests: the real server in-process on a free 127.0.0.1 port, requests over node:http
// (fetch would not let a test set Host or Origin), and a small JSON Schema check of each reply against
// the OpenAPI document, so the document cannot drift from what the server answers.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Admin } from '../../src/admin/admin.js';
import { type ApiServer, createApiServer } from '../../src/http/server.js';
import type { ApiServerOptions } from '../../src/http/types.js';
import type { Logger } from '../../src/logging/logger.js';

/** A reply, read to its end. */
export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as the server sent it. */
  readonly text: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly json: unknown;
}

/** Options of one request. */
export interface RequestOptions {
  /** A value to send as JSON (with its content type), or a string sent as it is. */
  readonly body?: unknown;
  /** Sent as they are; `host` replaces the default `127.0.0.1:PORT`. */
  readonly headers?: Record<string, string>;
  /** The bearer token; null sends no Authorization header. @defaultValue the server's token */
  readonly token?: string | null;
}

/** Sends one request to 127.0.0.1:`port` and reads the whole reply. */
export function send(port: number, method: string, path: string, token: string | null, options: RequestOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    if (typeof options.body !== 'string') headers['content-type'] = 'application/json';
  }
  const bearer = options.token === undefined ? token : options.token;
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  Object.assign(headers, options.headers);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no reply to ${method} ${path} within 15 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A pino logger whose lines are kept, for tests that check what the server logged. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** A started API over its own Admin; `close` stops both. */
export interface TestApi {
  readonly server: ApiServer;
  readonly admin: Admin;
  readonly port: number;
  readonly token: string;
  request(method: string, path: string, options?: RequestOptions): Promise<Reply>;
  close(): Promise<void>;
}

/** Starts the API for beanstalkd `url` on a free loopback port. */
export async function startApi(url: string, options: Partial<ApiServerOptions> = {}): Promise<TestApi> {
  const admin = options.admin ?? new Admin({ urls: [url], connectTimeoutMs: 2_000 });
  const server = await createApiServer({ ...options, admin });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    server,
    admin,
    port,
    token: server.token,
    request: (method, path, requestOptions) => send(port, method, path, server.token, requestOptions),
    close: async () => {
      await server.close();
      await admin.close();
    },
  };
}

/**
 * Checks an error reply: the status, JSON `{ error: { code, message } }` with the code, and the headers
 * every reply carries. Returns the `error` object for further checks.
 */
export function assertError(
  reply: Reply,
  status: number,
  code: string,
): { code: string; message: string; issues?: unknown[]; server?: string } {
  assert.equal(reply.status, status, `status of ${reply.text.slice(0, 300)}`);
  assertJsonHeaders(reply);
  const error = (reply.json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  assert.ok(error, `an error body: ${reply.text.slice(0, 300)}`);
  assert.equal(error.code, code, reply.text.slice(0, 300));
  assert.equal(typeof error.message, 'string');
  assert.ok((error.message as string).length > 0);
  return error as { code: string; message: string; issues?: unknown[]; server?: string };
}

/** The `path` of an error's first issue (which must exist). */
export function firstIssuePath(error: { issues?: unknown[] }): unknown[] {
  const first = error.issues?.[0] as { path?: unknown[] } | undefined;
  assert.ok(first?.path, `an issue with a path: ${JSON.stringify(error)}`);
  return first.path;
}

/** JSON with its charset, and never sniffed. */
export function assertJsonHeaders(reply: Reply): void {
  assert.equal(reply.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(reply.headers['x-content-type-options'], 'nosniff');
}

type JsonSchema = Record<string, unknown>;

/**
 * The problems of `value` against `schema` (an OpenAPI 3.1 schema with `$ref`s into `components`): the
 * keywords the API's schemas use (type, properties, required, items, enum, anyOf, additionalProperties).
 */
export function schemaProblems(value: unknown, schema: JsonSchema, components: Record<string, JsonSchema>, at = '$'): string[] {
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    const target = components[name];
    return target ? schemaProblems(value, target, components, at) : [`${at}: unresolved $ref ${schema.$ref}`];
  }
  if (Array.isArray(schema.anyOf)) {
    const fits = (schema.anyOf as JsonSchema[]).some((option) => schemaProblems(value, option, components, at).length === 0);
    return fits ? [] : [`${at}: matches no anyOf option (${JSON.stringify(value)?.slice(0, 80)})`];
  }
  const problems: string[] = [];
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => option === value))
    problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
  const type = schema.type as string | undefined;
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  if (type !== undefined) {
    const ok =
      type === kind ||
      (type === 'integer' && typeof value === 'number' && Number.isInteger(value)) ||
      (type === 'number' && typeof value === 'number');
    if (!ok) return [...problems, `${at}: expected ${type}, got ${kind}`];
  }
  if (kind === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    for (const key of (schema.required as string[] | undefined) ?? []) if (!(key in object)) problems.push(`${at}.${key}: missing`);
    const properties = (schema.properties as Record<string, JsonSchema> | undefined) ?? {};
    for (const [key, child] of Object.entries(object)) {
      const property = properties[key];
      if (property) problems.push(...schemaProblems(child, property, components, `${at}.${key}`));
      else if (typeof schema.additionalProperties === 'object') {
        problems.push(...schemaProblems(child, schema.additionalProperties as JsonSchema, components, `${at}.${key}`));
      } else if (schema.properties !== undefined && schema.additionalProperties !== true && type === 'object' && !isOpen(schema)) {
        problems.push(`${at}.${key}: not documented`);
      }
    }
  }
  if (kind === 'array' && schema.items) {
    (value as unknown[]).forEach((item, i) => {
      problems.push(...schemaProblems(item, schema.items as JsonSchema, components, `${at}[${i}]`));
    });
  }
  return problems;
}

/** Objects documented as free-form (kwargs, meta) have no `properties`; the others list every field. */
function isOpen(schema: JsonSchema): boolean {
  return schema.properties === undefined;
}

/** The OpenAPI document of a running API. */
export interface OpenApiDocument {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }> }>>;
  readonly components: { readonly schemas: Record<string, JsonSchema> };
}

/**
 * Asserts that `reply` is what the document says `method path` (`/api/tubes/{tube}`) answers with its
 * status: the response is documented and the body fits its schema.
 */
export function assertDocumented(document: OpenApiDocument, method: string, path: string, reply: Reply): void {
  const operation = document.paths[path]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${path} is in the OpenAPI document`);
  const response = operation.responses[String(reply.status)];
  assert.ok(response, `${method} ${path} documents status ${reply.status}`);
  const schema = response.content?.['application/json']?.schema;
  assert.ok(schema, `${method} ${path} ${reply.status} has a JSON schema`);
  assert.deepEqual(
    schemaProblems(reply.json, schema, document.components.schemas),
    [],
    `${method} ${path} ${reply.status} fits its schema`,
  );
}
