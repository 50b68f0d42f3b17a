import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { type BeanstalkdServer, freePort, rawCommand, rawPut, rawStatsJob, rawStatsTube, startBeanstalkd } from '../helpers/beanstalkd.js';

/** Resolves with the connect error code, or 'connected' if something is listening. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

describe('beanstalkd test harness', () => {
  const started: BeanstalkdServer[] = [];
  const tempDirs: string[] = [];

  after(async () => {
    await Promise.all(started.map((server) => server.stop('SIGKILL')));
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('freePort returns a usable port', async () => {
    const port = await freePort();
    assert.ok(Number.isInteger(port) && port > 0 && port < 65_536);
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
  });

  it('starts a server, puts a job and sees it in stats-job and stats-tube', async () => {
    const server = await startBeanstalkd();
    started.push(server);
    assert.equal(server.host, '127.0.0.1');
    assert.equal(server.url, `127.0.0.1:${server.port}`);
    assert.equal(server.binlogDir, undefined);

    const stats = await rawCommand(server.url, 'stats\r\n');
    assert.match(stats, /^OK \d+\r\n---\n/);
    assert.match(stats, new RegExp(`\\npid: ${server.pid}\\n`));

    const id = await rawPut(server.url, 'harness_tube', 'not json at all', { priority: 7, ttr: 30 });
    assert.match(id, /^\d+$/);

    const job = await rawStatsJob(server.url, id);
    assert.ok(job);
    assert.equal(job.state, 'ready');
    assert.equal(job.tube, 'harness_tube');
    assert.equal(job.pri, '7');
    assert.equal(job.ttr, '30');
    assert.equal(job.id, id);

    const tube = await rawStatsTube(server.url, 'harness_tube');
    assert.ok(tube);
    assert.equal(tube.name, 'harness_tube');
    assert.equal(tube['current-jobs-ready'], '1');
    assert.equal(tube['total-jobs'], '1');

    const peek = await rawCommand(server.url, `peek ${id}\r\n`);
    assert.equal(peek, `FOUND ${id} 15\r\nnot json at all\r\n`);

    assert.equal(await rawStatsJob(server.url, '999999'), null);
    assert.equal(await rawStatsTube(server.url, 'no_such_tube'), null);

    await server.stop();
  });

  it('rawPut counts bytes, not characters, and rejects with the reply line', async () => {
    const server = await startBeanstalkd({ maxJobSize: 10 });
    started.push(server);

    const id = await rawPut(server.url, 'bytes', 'ééééé'); // 10 bytes, 5 characters
    assert.equal((await rawStatsJob(server.url, id))?.state, 'ready');
    assert.equal(await rawCommand(server.url, `peek ${id}\r\n`), `FOUND ${id} 10\r\nééééé\r\n`);

    await assert.rejects(rawPut(server.url, 'bytes', 'ééééé!'), { message: 'JOB_TOO_BIG' });
    await assert.rejects(rawPut(server.url, '-bad', 'x'), { message: 'BAD_FORMAT' });
    await assert.rejects(rawCommand('10.0.0.1:11300', 'stats\r\n'), TypeError);

    await server.stop();
  });

  it('stop() frees the port and ends the process, and is idempotent', async () => {
    const server = await startBeanstalkd();
    started.push(server);
    assert.equal(await tryConnect(server.port), 'connected');
    assert.ok(pidAlive(server.pid));

    await server.stop();
    assert.equal(await tryConnect(server.port), 'ECONNREFUSED');
    assert.equal(pidAlive(server.pid), false);

    await server.stop();
    await server.stop('SIGKILL');
  });

  it('keeps jobs across a SIGKILL and a restart on the same port and binlog', async () => {
    const binlogDir = await mkdtemp(join(tmpdir(), 'bsworker-binlog-'));
    tempDirs.push(binlogDir);

    const first = await startBeanstalkd({ binlogDir, extraArgs: ['-f0'] });
    started.push(first);
    assert.equal(first.binlogDir, binlogDir);
    const id = await rawPut(first.url, 'durable', '{"task":"survive"}', { priority: 5 });

    await first.stop('SIGKILL');
    assert.equal(pidAlive(first.pid), false);
    assert.equal(await tryConnect(first.port), 'ECONNREFUSED');

    const second = await startBeanstalkd({ binlogDir, port: first.port });
    started.push(second);
    assert.equal(second.port, first.port);
    assert.notEqual(second.pid, first.pid);

    const job = await rawStatsJob(second.url, id);
    assert.ok(job, 'job should survive the restart');
    assert.equal(job.state, 'ready');
    assert.equal(job.tube, 'durable');
    assert.equal(job.pri, '5');
    assert.equal(await rawCommand(second.url, `peek ${id}\r\n`), `FOUND ${id} 18\r\n{"task":"survive"}\r\n`);

    await second.stop();
  });

  it('reports a startup failure with the exit code and stderr', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bsworker-binlog-'));
    tempDirs.push(dir);
    const owner = await startBeanstalkd({ binlogDir: dir });
    started.push(owner);
    // Only one process may hold a binlog directory; the second exits during startup.
    await assert.rejects(startBeanstalkd({ binlogDir: dir }), /exited during startup with code \d+/);
    await owner.stop();
  });

  it('does not retry a fixed port that is taken', async () => {
    const server = await startBeanstalkd();
    started.push(server);
    await assert.rejects(startBeanstalkd({ port: server.port }), /Address already in use/);
    await server.stop();
  });
});
