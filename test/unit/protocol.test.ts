/**
 * The pure protocol layer: the bytes of each command, the reply each expects and the values read from
 * replies, the YAML of stats replies, and reply words turned into errors. No socket: these are the
 * pieces the pipeline and the connection are built from, so a mistake here is a mistake on the wire.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  encodeBare,
  encodeBury,
  encodeDelete,
  encodeKick,
  encodeKickJob,
  encodePauseTube,
  encodePeek,
  encodePut,
  encodeRelease,
  encodeReserve,
  encodeReserveJob,
  encodeStatsJob,
  encodeTouch,
  encodeTubeCommand,
} from '../../src/beanstalk/encode.js';
import {
  BuriedOnPutError,
  DeadlineSoonError,
  DrainingError,
  errorFromReply,
  InternalServerError,
  isProtocolReply,
  JobTooBigError,
  NotFoundError,
  OutOfMemoryError,
  ProtocolError,
  UnexpectedReplyError,
} from '../../src/beanstalk/errors.js';
import { countOf, EXPECT, idOf, jobOf, textOf, toJobStats, toTubeStats } from '../../src/beanstalk/replies.js';
import { parseYamlList, parseYamlMap, parseYamlStats } from '../../src/beanstalk/yaml.js';

describe('the encoder', () => {
  it('writes a put as one buffer: header, body bytes as given, \\r\\n', () => {
    const body = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x41]);
    const bytes = encodePut(body, { priority: 7, delaySeconds: 2, ttrSeconds: 60 });
    assert.deepEqual(bytes, Buffer.concat([Buffer.from('put 7 2 60 5\r\n'), body, Buffer.from('\r\n')]));
  });

  it('counts the body in bytes, not characters', () => {
    const body = Buffer.from('héllo', 'utf8');
    const bytes = encodePut(body, { priority: 0, delaySeconds: 0, ttrSeconds: 1 });
    assert.equal(bytes.toString('latin1', 0, bytes.indexOf(0x0a) + 1), `put 0 0 1 ${body.length}\r\n`);
    assert.equal(bytes.length, 'put 0 0 1 6\r\n'.length + 6 + 2);
  });

  it('writes an empty body as an empty data block', () => {
    assert.equal(encodePut(Buffer.alloc(0), { priority: 1, delaySeconds: 0, ttrSeconds: 5 }).toString('latin1'), 'put 1 0 5 0\r\n\r\n');
  });

  it('writes every other command as one line, as beanstalkd documents it', () => {
    const lines: [string, string][] = [
      [encodeReserve(0), 'reserve-with-timeout 0\r\n'],
      [encodeReserveJob('42'), 'reserve-job 42\r\n'],
      [encodeDelete('42'), 'delete 42\r\n'],
      [encodeRelease('42', 1024, 5), 'release 42 1024 5\r\n'],
      [encodeBury('42', 3), 'bury 42 3\r\n'],
      [encodeTouch('42'), 'touch 42\r\n'],
      [encodePeek('42'), 'peek 42\r\n'],
      [encodeKickJob('42'), 'kick-job 42\r\n'],
      [encodeStatsJob('42'), 'stats-job 42\r\n'],
      [encodeKick(100), 'kick 100\r\n'],
      [encodeTubeCommand('use', 'a.b'), 'use a.b\r\n'],
      [encodeTubeCommand('watch', '1.0'), 'watch 1.0\r\n'],
      [encodeTubeCommand('ignore', 'default'), 'ignore default\r\n'],
      [encodeTubeCommand('stats-tube', 'x'), 'stats-tube x\r\n'],
      [encodePauseTube('x', 30), 'pause-tube x 30\r\n'],
      [encodeBare('peek-ready'), 'peek-ready\r\n'],
      [encodeBare('peek-delayed'), 'peek-delayed\r\n'],
      [encodeBare('peek-buried'), 'peek-buried\r\n'],
      [encodeBare('stats'), 'stats\r\n'],
      [encodeBare('list-tubes'), 'list-tubes\r\n'],
      [encodeBare('list-tubes-watched'), 'list-tubes-watched\r\n'],
    ];
    for (const [actual, expected] of lines) assert.equal(actual, expected);
  });
});

describe('the expected replies', () => {
  it('name the success word of each command, and the word that means "nothing"', () => {
    assert.deepEqual(EXPECT.put, { word: 'INSERTED' });
    assert.deepEqual(EXPECT.reserve, { word: 'RESERVED', nullWord: 'TIMED_OUT' });
    assert.deepEqual(EXPECT.peek, { word: 'FOUND', nullWord: 'NOT_FOUND' });
    assert.deepEqual(EXPECT.statsJob, { word: 'OK', nullWord: 'NOT_FOUND' });
    assert.deepEqual(EXPECT.statsTube, { word: 'OK', nullWord: 'NOT_FOUND' });
    assert.equal(EXPECT.yaml.word, 'OK');
    assert.equal(EXPECT.kickJob.word, 'KICKED');
    assert.equal(EXPECT.ignore.word, 'WATCHING');
    assert.ok(Object.isFrozen(EXPECT));
  });

  it('read ids, counts, jobs and YAML text out of replies', () => {
    assert.equal(idOf(['INSERTED', '17']), '17');
    assert.equal(countOf(['WATCHING', '3']), 3);
    assert.equal(countOf(['KICKED', '0']), 0);
    const body = Buffer.from('{"x":1}');
    assert.deepEqual(jobOf(['RESERVED', '9', '7'], body), { id: '9', body });
    assert.deepEqual(jobOf(['FOUND', '9', '0'], undefined), { id: '9', body: Buffer.alloc(0) });
    assert.equal(textOf(['OK', '5'], Buffer.from('---\n', 'utf8')), '---\n');
  });

  it('turn stats records into typed stats, missing counters as 0', () => {
    const job = toJobStats(parseYamlMap('---\ntube: "1.0"\nstate: ready\npri: 5\nage: 2\nttr: 60\n'), '4');
    assert.equal(job.id, '4');
    assert.equal(job.tube, '1.0');
    assert.equal(job.priority, 5);
    assert.equal(job.kicks, 0);
    const tube = toTubeStats(parseYamlMap('---\nname: a\ncurrent-jobs-ready: 12\npause: 0\n'), 'a');
    assert.equal(tube.ready, 12);
    assert.equal(tube.buried, 0);
  });
});

describe('the YAML of replies', () => {
  it('keeps tube names that look like numbers as strings', () => {
    assert.deepEqual(parseYamlList('---\n- default\n- 1.0\n- 0x1A\n- 1e3\n'), ['default', '1.0', '0x1A', '1e3']);
    assert.equal(parseYamlMap('---\nname: 1e3\n').name, '1e3');
  });

  it('reads server stats numbers as numbers, and everything else as written', () => {
    const stats = parseYamlStats('---\ncurrent-jobs-ready: 3\nversion: "1.13"\nrusage-utime: 0.125\nhostname: box\n');
    assert.equal(stats['current-jobs-ready'], 3);
    assert.equal(stats['rusage-utime'], 0.125);
    assert.equal(stats.version, '1.13');
    assert.equal(stats.hostname, 'box');
  });
});

describe('reply words as errors', () => {
  it('maps every failure word beanstalkd documents to its class, with the command and id', () => {
    const notFound = errorFromReply('NOT_FOUND', 'delete', '42');
    assert.ok(notFound instanceof NotFoundError);
    assert.equal(notFound.command, 'delete');
    assert.match(notFound.message, /delete 42: NOT_FOUND/);
    assert.ok(errorFromReply('JOB_TOO_BIG', 'put') instanceof JobTooBigError);
    assert.ok(errorFromReply('DRAINING', 'put') instanceof DrainingError);
    assert.ok(errorFromReply('DEADLINE_SOON', 'reserve-with-timeout') instanceof DeadlineSoonError);
    assert.ok(errorFromReply('OUT_OF_MEMORY', 'put') instanceof OutOfMemoryError);
    assert.ok(errorFromReply('INTERNAL_ERROR', 'put') instanceof InternalServerError);
    assert.ok(errorFromReply('BURIED', 'release', '3') instanceof BuriedOnPutError);
    for (const word of ['BAD_FORMAT', 'UNKNOWN_COMMAND', 'EXPECTED_CRLF']) {
      assert.ok(errorFromReply(word, 'put') instanceof ProtocolError, word);
      assert.ok(isProtocolReply(word), word);
    }
    const odd = errorFromReply('NOT_IGNORED', 'ignore');
    assert.ok(odd instanceof UnexpectedReplyError);
    assert.equal(odd.code, 'NOT_IGNORED');
    assert.equal(isProtocolReply('NOT_FOUND'), false);
  });
});

describe('the layers', () => {
  const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
  const imports = async (file: string): Promise<string[]> =>
    [...(await readFile(join(SRC, file), 'utf8')).matchAll(/^import [^;]*? from '([^']+)';/gms)].map((match) => match[1] ?? '');

  it('keeps fivebeans behind src/beanstalk/fivebeans-socket.ts alone', async () => {
    const files = (await readdir(SRC, { recursive: true })).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'));
    const importers: string[] = [];
    for (const file of files) if ((await imports(file)).some((from) => from.startsWith('fivebeans'))) importers.push(file);
    assert.deepEqual(importers, [join('beanstalk', 'fivebeans-socket.ts')]);
  });

  it('keeps the protocol layer free of sockets, fivebeans and the pipeline: it imports only pure modules', async () => {
    for (const file of ['encode.ts', 'reply-reader.ts', 'replies.ts', 'yaml.ts', 'errors.ts']) {
      const from = await imports(join('beanstalk', file));
      assert.deepEqual(
        from.filter((name) => !['./address.js', './errors.js', './types.js'].includes(name)),
        [],
        `${file} imports only pure modules`,
      );
    }
  });
});
