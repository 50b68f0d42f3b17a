/**
 * The reader that splits beanstalkd's byte stream into replies. TCP may cut a reply anywhere, so the
 * result must not depend on where the reads end; bytes that cannot be beanstalkd replies must throw
 * MalformedReplyError (the connection is then dropped) rather than be guessed at.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MalformedReplyError, ReplyReader } from '../../src/beanstalk/reply-reader.js';

/** One reply as the handler saw it; the body copied out as latin1 so every byte value survives. */
type Seen = [words: string[], body: string | null];

/** A reader that records every reply. Bodies are copied at once: they are views of the read buffer. */
function recorder(): { reader: ReplyReader; seen: Seen[] } {
  const seen: Seen[] = [];
  const reader = new ReplyReader((words, body) => {
    seen.push([[...words], body === undefined ? null : Buffer.from(body).toString('latin1')]);
  });
  return { reader, seen };
}

/** Feeds `chunks` to a fresh reader and returns what it handed out. */
function feed(chunks: readonly Buffer[]): Seen[] {
  const { reader, seen } = recorder();
  for (const chunk of chunks) reader.push(chunk);
  return seen;
}

/** `head <body byte length>\r\n<body>\r\n`, with the length counted in bytes. */
function withBody(head: string, body: Buffer | string): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  return Buffer.concat([Buffer.from(`${head} ${bytes.length}\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1')]);
}

const binary = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x0a, 0x0d, 0x7f, 0x80]);

/** A stream of several replies: plain lines, bodies with CRLF and LF inside, an empty body, binary bytes. */
const STREAM = Buffer.concat([
  Buffer.from('INSERTED 5\r\n', 'latin1'),
  withBody('RESERVED 7', 'hello'),
  withBody('OK', '---\nfoo: 1\n'),
  Buffer.from('DELETED\r\n', 'latin1'),
  withBody('FOUND 9', 'a\r\nb\r\n\r\nc'),
  withBody('RESERVED 10', ''),
  Buffer.from('USING some-tube\r\n', 'latin1'),
  withBody('RESERVED 11', 'ends with crlf\r\n'),
  withBody('FOUND 12', binary),
  Buffer.from('TIMED_OUT\r\n', 'latin1'),
  withBody('RESERVED 13', 'RESERVED 1 2\r\nxx\r\n'),
  Buffer.from('NOT_FOUND\r\n', 'latin1'),
]);

const EXPECTED: Seen[] = [
  [['INSERTED', '5'], null],
  [['RESERVED', '7', '5'], 'hello'],
  [['OK', '11'], '---\nfoo: 1\n'],
  [['DELETED'], null],
  [['FOUND', '9', '9'], 'a\r\nb\r\n\r\nc'],
  [['RESERVED', '10', '0'], ''],
  [['USING', 'some-tube'], null],
  [['RESERVED', '11', '16'], 'ends with crlf\r\n'],
  [['FOUND', '12', '8'], binary.toString('latin1')],
  [['TIMED_OUT'], null],
  [['RESERVED', '13', '18'], 'RESERVED 1 2\r\nxx\r\n'],
  [['NOT_FOUND'], null],
];

/** Asserts that pushing `chunks` in order throws MalformedReplyError, at the latest on the last chunk. */
function assertMalformed(chunks: readonly (string | Buffer)[], message?: RegExp): void {
  const { reader } = recorder();
  assert.throws(
    () => {
      for (const chunk of chunks) reader.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    },
    (error: unknown) => {
      assert.ok(error instanceof MalformedReplyError, `expected a MalformedReplyError, got ${String(error)}`);
      if (message) assert.match(error.message, message);
      return true;
    },
  );
}

describe('ReplyReader: framing', () => {
  it('reads a whole stream of replies at once', () => {
    assert.deepEqual(feed([STREAM]), EXPECTED);
  });

  it('gives the same replies when the stream arrives one byte at a time', () => {
    const bytes = [...STREAM].map((byte) => Buffer.from([byte]));
    assert.deepEqual(feed(bytes), EXPECTED);
  });

  it('gives the same replies for a split into two reads at every position (empty reads included)', () => {
    for (let at = 0; at <= STREAM.length; at += 1) {
      assert.deepEqual(feed([STREAM.subarray(0, at), STREAM.subarray(at)]), EXPECTED, `split at byte ${at}`);
    }
  });

  it('gives the same replies for a split into three reads at every pair of positions', () => {
    for (let a = 0; a <= STREAM.length; a += 1) {
      for (let b = a; b <= STREAM.length; b += 1) {
        const chunks = [STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)];
        assert.deepEqual(feed(chunks), EXPECTED, `split at bytes ${a} and ${b}`);
      }
    }
  });

  it('hands out each reply as soon as its last byte arrives, not later', () => {
    const { reader, seen } = recorder();
    const first = withBody('RESERVED 7', 'hello');
    reader.push(first.subarray(0, first.length - 1));
    assert.equal(seen.length, 0, 'the body is complete but its \\r\\n is not');
    reader.push(first.subarray(first.length - 1));
    assert.deepEqual(seen, [[['RESERVED', '7', '5'], 'hello']]);
    reader.push(Buffer.from('INSERTED 8\r'));
    assert.equal(seen.length, 1);
    reader.push(Buffer.from('\n'));
    assert.deepEqual(seen[1], [['INSERTED', '8'], null]);
  });

  it('reads a 0-byte body, alone and followed by another reply in the same read', () => {
    assert.deepEqual(feed([Buffer.from('RESERVED 3 0\r\n\r\n')]), [[['RESERVED', '3', '0'], '']]);
    assert.deepEqual(feed([Buffer.from('OK 0\r\n\r\nDELETED\r\n')]), [
      [['OK', '0'], ''],
      [['DELETED'], null],
    ]);
  });

  it('waits for a body far longer than the line limit, read in small pieces', () => {
    const body = Buffer.alloc(100_000, 'x');
    body.write('\r\n', 50_000, 'latin1');
    const stream = Buffer.concat([withBody('RESERVED 42', body), Buffer.from('INSERTED 43\r\n')]);
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length; at += 100) chunks.push(stream.subarray(at, at + 100));
    assert.deepEqual(feed(chunks), [
      [['RESERVED', '42', '100000'], body.toString('latin1')],
      [['INSERTED', '43'], null],
    ]);
  });

  it('joins a body split over reads once, and reads the replies after it from the last read', () => {
    // A 60 KB body over 64 KiB reads: the pieces are kept as they are and copied once, when whole.
    const body = Buffer.alloc(150_000, 'y');
    const stream = Buffer.concat([withBody('RESERVED 1', body), Buffer.from('DELETED\r\n'), withBody('FOUND 2', 'abc')]);
    const handed: Buffer[] = [];
    const reader = new ReplyReader((_words, bytes) => {
      if (bytes) handed.push(bytes);
    });
    const cut = [0, 65_536, 131_072, stream.length - 3, stream.length];
    for (let i = 1; i < cut.length; i += 1) reader.push(stream.subarray(cut[i - 1], cut[i]));
    assert.equal(handed.length, 2);
    assert.equal(handed[0]?.length, 150_000);
    assert.ok(handed[0]?.equals(body));
    assert.equal(handed[1]?.toString('latin1'), 'abc');
  });

  it('refuses a split body whose \\r\\n is wrong, once it has arrived', () => {
    const { reader } = recorder();
    reader.push(Buffer.from('RESERVED 7 5\r\nhel'));
    reader.push(Buffer.from('lo'));
    assert.throws(() => reader.push(Buffer.from('\rX')), /RESERVED body/);
  });

  it('lets a partial line under the limit wait for the rest', () => {
    const { reader, seen } = recorder();
    reader.push(Buffer.from('INSERTED 4'));
    assert.deepEqual(seen, []);
    reader.push(Buffer.from('2\r\n'));
    assert.deepEqual(seen, [[['INSERTED', '42'], null]]);

    // Exactly 1,024 bytes of an unfinished line is still allowed to wait.
    const long = recorder();
    long.reader.push(Buffer.alloc(1_024, 'A'));
    long.reader.push(Buffer.from('\r\n'));
    assert.equal(long.seen.length, 1);
    assert.equal(long.seen[0]?.[0][0]?.length, 1_024);
  });
});

describe('ReplyReader: malformed input', () => {
  it('refuses a line ended by \\n without \\r', () => {
    assertMalformed(['INSERTED 5\n'], /\\r\\n/);
    assertMalformed(['\n']);
    assertMalformed(['DELETED\r\n', 'INSERTED 5\n']);
    // The \r and the \n in different reads are fine; a \n after another byte is not.
    assertMalformed(['INSERTED 5', '\n']);
  });

  it('refuses a RESERVED, FOUND or OK whose length is not a number, is negative or is missing', () => {
    assertMalformed(['RESERVED 7 abc\r\n'], /RESERVED/);
    assertMalformed(['RESERVED 7 -1\r\n'], /RESERVED/);
    assertMalformed(['RESERVED 7 1.5\r\n']);
    assertMalformed(['FOUND 7 five\r\n'], /FOUND/);
    assertMalformed(['OK\r\n'], /OK/);
    assertMalformed(['OK -3\r\n']);
  });

  it('refuses a length that is not plain decimal digits (empty, hex, exponent, sign)', () => {
    // beanstalkd writes lengths as %u: anything else means the stream is not beanstalkd's.
    const accepted: string[] = [];
    // Each followed by as many bytes as Number() would read from its length, so only the length can be refused.
    for (const line of [
      'OK \r\n\r\n',
      'RESERVED 7 0x5\r\nhello\r\n',
      'RESERVED 7 5e0\r\nhello\r\n',
      'RESERVED 7 +5\r\nhello\r\n',
      'FOUND 7 0b101\r\nhello\r\n',
    ]) {
      const { reader } = recorder();
      try {
        reader.push(Buffer.from(line, 'latin1'));
        accepted.push(JSON.stringify(line));
      } catch (error) {
        assert.ok(error instanceof MalformedReplyError, `${JSON.stringify(line)}: ${String(error)}`);
      }
    }
    assert.deepEqual(accepted, [], `accepted as replies: ${accepted.join(', ')}`);
  });

  it('refuses a body not followed by \\r\\n, once the two bytes after it have arrived', () => {
    assertMalformed(['RESERVED 7 5\r\nhelloXY'], /RESERVED body/);
    assertMalformed(['RESERVED 7 5\r\nhello\n\r']);
    assertMalformed(['OK 3\r\nabc\rX']);
    // One byte after the body is not enough to judge: the reader waits, then refuses.
    const { reader, seen } = recorder();
    reader.push(Buffer.from('RESERVED 7 5\r\nhello\r'));
    assert.equal(seen.length, 0);
    assert.throws(() => reader.push(Buffer.from('X')), MalformedReplyError);
    // A body shorter than announced, followed by the next reply: the length decides, not the \r\n.
    assertMalformed(['RESERVED 7 10\r\nhello\r\nDELETED\r\n']);
  });

  it('refuses more than 1,024 bytes without a line end, in one read or gathered over several', () => {
    assertMalformed([Buffer.alloc(1_025, 'A')], /1024/);
    assertMalformed([Buffer.alloc(600, 'A'), Buffer.alloc(600, 'A')], /1024/);
    // A complete reply before the long line does not hide it.
    assertMalformed([Buffer.concat([Buffer.from('DELETED\r\n'), Buffer.alloc(1_025, 'B')])]);
    const bytes = Buffer.alloc(2_000, 'C');
    assertMalformed(
      [...bytes].map((byte) => Buffer.from([byte])),
      /1024/,
    );
  });
});
