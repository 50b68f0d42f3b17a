// The supervisor's IPC messages: what a child sends is untrusted (task code has process.send too), so
// anything that is not exactly one of the messages is reported as malformed and never acted on.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import {
  type ChildMessage,
  decodeChildMessage,
  decodeSupervisorMessage,
  IPC,
  isChildMessage,
  isSupervisorMessage,
  onChildMessage,
  onSupervisorMessage,
  sendToChild,
  sendToSupervisor,
} from '../../src/cli/ipc.js';

const metrics = async (): Promise<unknown> => {
  const registry = new Registry();
  const { Counter } = await import('prom-client');
  new Counter({ name: 'jobs_total', help: 'h', registers: [registry] }).inc(3);
  return registry.getMetricsAsJSON();
};

describe('IPC messages', () => {
  it('accepts each well-formed message, keeping only its own fields', async () => {
    const good = await metrics();
    assert.deepEqual(decodeChildMessage({ type: IPC.recycled, extra: 1 }), { ok: true, message: { type: IPC.recycled } });
    assert.deepEqual(decodeChildMessage({ type: IPC.metricsReply, id: 7, metrics: good }), {
      ok: true,
      message: { type: IPC.metricsReply, id: 7, metrics: good },
    });
    assert.ok(isChildMessage({ type: IPC.metricsFinal, metrics: [] }));
    for (const message of [{ type: IPC.force }, { type: IPC.siblingDied }, { type: IPC.metricsRequest, id: 1 }]) {
      assert.ok(isSupervisorMessage(message), message.type);
    }
  });

  it("rejects what a child's task code might send, saying why", () => {
    const malformed: unknown[] = [
      undefined,
      null,
      42,
      'bsworker:recycled',
      [],
      {},
      { type: 'task:progress', done: 3 },
      { type: IPC.force },
      { type: IPC.metricsReply, metrics: [] },
      { type: IPC.metricsReply, id: '7', metrics: [] },
      { type: IPC.metricsReply, id: 1.5, metrics: [] },
      { type: IPC.metricsReply, id: 7 },
      { type: IPC.metricsReply, id: 7, metrics: {} },
      { type: IPC.metricsReply, id: 7, metrics: [null] },
      { type: IPC.metricsReply, id: 7, metrics: [{ name: 1, type: 'counter', values: [] }] },
      { type: IPC.metricsReply, id: 7, metrics: [{ name: 'x', type: 'info', values: [] }] },
      { type: IPC.metricsReply, id: 7, metrics: [{ name: 'x', type: 'counter', values: {} }] },
      { type: IPC.metricsReply, id: 7, metrics: [{ name: 'x', type: 'counter', values: [{ value: 'lots' }] }] },
      { type: IPC.metricsFinal, metrics: 'all of them' },
    ];
    for (const value of malformed) {
      const decoded = decodeChildMessage(value);
      assert.equal(decoded.ok, false, JSON.stringify(value));
      assert.ok(!decoded.ok && decoded.reason.length > 0);
      assert.equal(isChildMessage(value), false);
    }
    for (const value of [
      null,
      'bsworker:force',
      { type: IPC.recycled },
      { type: IPC.metricsRequest },
      { type: IPC.metricsRequest, id: 'x' },
    ]) {
      assert.equal(isSupervisorMessage(value), false, JSON.stringify(value));
    }
    assert.deepEqual(decodeSupervisorMessage({ type: IPC.metricsRequest }), {
      ok: false,
      reason: 'a metrics request without an id',
      replyTo: undefined,
    });
  });

  it('keeps the request id of a metrics reply whose metrics are malformed, so its scrape need not wait', () => {
    const decoded = decodeChildMessage({ type: IPC.metricsReply, id: 9, metrics: [{ name: 'x', type: 'counter', values: [{}] }] });
    assert.equal(decoded.ok, false);
    assert.equal(!decoded.ok && decoded.replyTo, 9);
  });

  it('a long unknown type is cut short in the reason, so it cannot fill the log line', () => {
    const decoded = decodeChildMessage({ type: 'x'.repeat(10_000) });
    assert.ok(!decoded.ok && decoded.reason.length < 120);
  });

  it('onChildMessage hands over the messages and reports the rest, never throwing', () => {
    const child = new EventEmitter();
    const seen: ChildMessage[] = [];
    const problems: string[] = [];
    const stop = onChildMessage(
      child as unknown as ChildProcess,
      (message) => seen.push(message),
      (problem) => problems.push(problem.reason),
    );
    child.emit('message', { type: IPC.recycled });
    child.emit('message', 'bsworker:recycled');
    child.emit('message', null);
    child.emit('message', { type: IPC.metricsReply, id: 1, metrics: 'x' });
    assert.deepEqual(seen, [{ type: IPC.recycled }]);
    assert.equal(problems.length, 3);
    stop();
    child.emit('message', { type: IPC.recycled });
    assert.equal(seen.length, 1, 'stopped listening');
  });

  it('onSupervisorMessage reads the messages on a channel, and stops', () => {
    const channel = new EventEmitter();
    const seen: string[] = [];
    const problems: string[] = [];
    const stop = onSupervisorMessage(
      (message) => seen.push(message.type),
      (problem) => problems.push(problem.reason),
      channel as unknown as NodeJS.Process,
    );
    channel.emit('message', { type: IPC.force });
    channel.emit('message', { type: IPC.metricsRequest, id: 3 });
    channel.emit('message', 'bsworker:force');
    stop();
    channel.emit('message', { type: IPC.siblingDied });
    assert.deepEqual(seen, [IPC.force, IPC.metricsRequest]);
    assert.equal(problems.length, 1);
  });

  it('sendToSupervisor resolves without a channel, and once the message is handed over with one', async () => {
    await sendToSupervisor({ type: IPC.recycled }, { connected: false } as NodeJS.Process);
    const sent: unknown[] = [];
    const channel = {
      connected: true,
      send: (message: unknown, _handle: unknown, _options: unknown, callback: () => void) => {
        sent.push(message);
        setImmediate(callback);
        return true;
      },
    };
    await sendToSupervisor({ type: IPC.recycled }, channel as unknown as NodeJS.Process);
    const throwing = { connected: true, send: () => assert.fail('channel closed') };
    await sendToSupervisor({ type: IPC.recycled }, throwing as unknown as NodeJS.Process);
    assert.deepEqual(sent, [{ type: IPC.recycled }]);
  });

  it('sendToChild sends the typed message, with the callback when given', () => {
    const calls: unknown[][] = [];
    const child = { send: (...args: unknown[]) => calls.push(args) > 0 };
    const callback = (): void => undefined;
    sendToChild(child as unknown as ChildProcess, { type: IPC.force });
    sendToChild(child as unknown as ChildProcess, { type: IPC.metricsRequest, id: 2 }, callback);
    assert.deepEqual(calls, [[{ type: IPC.force }], [{ type: IPC.metricsRequest, id: 2 }, callback]]);
  });
});
